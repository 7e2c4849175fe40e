"""DINOv2's image processor: transformers' BitImageProcessor, which transformers maps DINOv2 checkpoints to.
Its defaults are CLIP's (shortest edge 224, bicubic, a 224x224 centre crop, OpenAI's mean and std, RGB)."""

from flaxformers.models.clip.processing import CLIPImageProcessor


class BitImageProcessor(CLIPImageProcessor):
    pass


__all__ = ["BitImageProcessor"]

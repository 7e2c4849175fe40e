"""DINOv2's image processor: transformers' BitImageProcessor (shortest edge 224, bicubic, a 224x224
centre crop, OpenAI CLIP's mean and std, RGB), which transformers maps DINOv2 checkpoints to."""

from flaxformers.models.clip.processing import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from flaxformers.processors.image import BICUBIC, ImageProcessor


class BitImageProcessor(ImageProcessor):
    size = {"shortest_edge": 224}
    default_to_square = False
    resample = BICUBIC
    do_center_crop = True
    crop_size = {"height": 224, "width": 224}
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    do_convert_rgb = True


__all__ = ["BitImageProcessor"]

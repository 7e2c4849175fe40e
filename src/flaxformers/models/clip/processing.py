"""CLIP's image processor (transformers' CLIPImageProcessor: shortest edge 224, bicubic, a 224x224
centre crop, OpenAI's mean and std, RGB) and its text-and-image processor."""

from flaxformers.processors import Processor
from flaxformers.processors.image import BICUBIC, ImageProcessor

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPImageProcessor(ImageProcessor):
    size = {"shortest_edge": 224}
    default_to_square = False
    resample = BICUBIC
    do_center_crop = True
    crop_size = {"height": 224, "width": 224}
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    do_convert_rgb = True


class CLIPProcessor(Processor):
    """transformers' CLIPProcessor: CLIP's tokenizer and image processor under one call."""


__all__ = ["CLIPImageProcessor", "CLIPProcessor", "OPENAI_CLIP_MEAN", "OPENAI_CLIP_STD"]

"""ViT's image processor: transformers' ViTImageProcessor (224x224, bilinear, mean and std 0.5)."""

from flaxformers.processors.image import (
    BILINEAR,
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    ImageProcessor,
)


class ViTImageProcessor(ImageProcessor):
    size = {"height": 224, "width": 224}
    resample = BILINEAR
    image_mean = IMAGENET_STANDARD_MEAN
    image_std = IMAGENET_STANDARD_STD


__all__ = ["ViTImageProcessor"]

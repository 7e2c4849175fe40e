"""BEiT's image processor: transformers' BeitImageProcessor (224x224, bicubic, mean and std 0.5).

Its segmentation-map options (`do_reduce_labels`) change no image; they are kept in the config."""

from flaxformers.processors.image import (
    BICUBIC,
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    ImageProcessor,
)


class BeitImageProcessor(ImageProcessor):
    size = {"height": 224, "width": 224}
    do_center_crop = False
    crop_size = {"height": 224, "width": 224}
    resample = BICUBIC
    image_mean = IMAGENET_STANDARD_MEAN
    image_std = IMAGENET_STANDARD_STD


__all__ = ["BeitImageProcessor"]

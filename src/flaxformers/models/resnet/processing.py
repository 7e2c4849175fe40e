"""ResNet's (and RegNet's) image processor: transformers' ConvNextImageProcessor, which transformers
maps both to. Below 384 pixels it resizes the shortest edge to `shortest_edge / crop_pct` and takes
the centre square; from 384 up it resizes to the square directly."""

from typing import Any

import numpy as np

from flaxformers.processors.image import (
    BICUBIC,
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    ImageProcessor,
    center_crop,
    resize,
    shortest_edge_size,
)

CROP_BELOW = 384  # sizes from here up are resized to the square, not cropped


class ConvNextImageProcessor(ImageProcessor):
    EXTRA_OPTIONS = ("crop_pct",)
    size = {"shortest_edge": 384}
    default_to_square = False
    resample = BICUBIC
    image_mean = IMAGENET_STANDARD_MEAN
    image_std = IMAGENET_STANDARD_STD
    crop_pct = 224 / 256

    def resize(self, image: np.ndarray, options: dict[str, Any]) -> np.ndarray:
        if "shortest_edge" not in options["size"]:
            raise ValueError(f"{type(self).__name__} needs size={{'shortest_edge': ...}}; got {options['size']}.")
        edge = options["size"]["shortest_edge"]
        if edge >= CROP_BELOW:
            return resize(image, (edge, edge), options["resample"])
        resized = resize(image, shortest_edge_size(*image.shape[-2:], int(edge / options["crop_pct"])),
                         options["resample"])
        return center_crop(resized, (edge, edge))


__all__ = ["ConvNextImageProcessor"]

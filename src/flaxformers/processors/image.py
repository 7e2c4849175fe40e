"""Image processors: transformers' Pillow-and-numpy preprocessing, the same pixels for the same images.

An `ImageProcessor` converts each image to RGB (optionally), resizes it with Pillow (its `resample`
filter), center-crops, rescales (`* rescale_factor`) and normalises (`(x - mean) / std`), and returns
`pixel_values` channels first, float32. The steps and their arithmetic are those of transformers'
slow (PIL backend) processors, so the numbers are equal. A family's `processing.py` subclasses it
with the class defaults of transformers' processor of the same name; `preprocessor_config.json`
overrides them, as in transformers.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from math import ceil
from typing import Any

import numpy as np

from flaxformers.checkpoints.hub import PushToHubMixin

PREPROCESSOR_NAME = "preprocessor_config.json"
IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
# Pillow's filter numbers (`PIL.Image.Resampling`), as `resample` holds them in preprocessor_config.json
NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING = 0, 1, 2, 3, 4, 5
# The sizes `size` may give: exactly one of these key sets (transformers' `get_size_dict`)
SIZE_KEYS = ({"height", "width"}, {"shortest_edge"}, {"shortest_edge", "longest_edge"})
RETURN_TENSORS = (None, "np", "jax")
CHANNELS_FIRST, CHANNELS_LAST = "channels_first", "channels_last"
# preprocessor_config.json keys that name a class, not an option
_TYPE_KEYS = ("image_processor_type", "feature_extractor_type", "processor_class", "auto_map")


def _pil():
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError as error:
        raise ImportError("Image processing needs Pillow: pip install 'flaxformers[vision]'.") from error
    return PIL


def is_pil_image(image: Any) -> bool:
    import sys

    module = sys.modules.get("PIL.Image")  # a PIL image exists only if PIL was imported
    return module is not None and isinstance(image, module.Image)


def load_image(image: str | os.PathLike | Any) -> Any:
    """A path (or a PIL image) as an upright RGB PIL image, as transformers' `load_image` reads it."""
    PIL = _pil()
    if isinstance(image, str | os.PathLike):
        path = os.fspath(image)
        if path.startswith(("http://", "https://")):
            raise ValueError(f"image {path!r} is a URL; flaxformers reads local files only: download it first.")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image {path!r} is not a file; pass a path to an image, a PIL image or an array.")
        image = PIL.Image.open(path)
    elif not is_pil_image(image):
        raise TypeError(f"load_image() takes a path or a PIL image, not {type(image).__name__}.")
    return PIL.ImageOps.exif_transpose(image).convert("RGB")


# --- one image, as a [C, H, W] array ---------------------------------------------------------------
def _channel_axis(image: np.ndarray, data_format: str | None) -> int:
    """0 or -1: where the channels of a 3-d array are (1, 3 or 4 of them; first when both ends could be)."""
    if data_format is not None:
        if data_format not in (CHANNELS_FIRST, CHANNELS_LAST):
            raise ValueError(f"input_data_format={data_format!r}; expected {CHANNELS_FIRST!r} or {CHANNELS_LAST!r}.")
        return 0 if data_format == CHANNELS_FIRST else -1
    if image.shape[0] in (1, 3, 4):
        return 0
    if image.shape[-1] in (1, 3, 4):
        return -1
    raise ValueError(f"Cannot tell the channels of an image of shape {image.shape}: pass input_data_format= "
                     f"{CHANNELS_FIRST!r} or {CHANNELS_LAST!r}.")


def _rgb_from_pil(image: Any) -> np.ndarray:
    """[H, W, 3] uint8: transparency composited onto white, other modes converted by Pillow."""
    PIL = _pil()
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.array(PIL.Image.alpha_composite(white, rgba).convert("RGB"))
    return np.array(image.convert("RGB"))


def _rgb_from_array(image: np.ndarray) -> np.ndarray:
    """[H, W, C] -> [H, W, 3]: gray repeated, alpha composited onto white (255, or 1.0 for floats)."""
    channels = image.shape[-1]
    if channels == 1:
        return np.repeat(image, 3, axis=-1)
    if channels != 4:
        return image
    floating = np.issubdtype(image.dtype, np.floating)
    if floating and (image.min() < 0.0 or image.max() > 1.0):
        raise ValueError(f"An RGBA float image must lie in [0, 1] to be composited onto white; it spans "
                         f"[{image.min()}, {image.max()}].")
    white = 1.0 if floating else 255
    alpha = image[..., 3:4] / white
    composite = alpha * image[..., :3] + (1 - alpha) * white
    return composite.astype(image.dtype) if floating else np.round(composite).astype(image.dtype)


def to_channels_first(image: Any, do_convert_rgb: bool = False, input_data_format: str | None = None) -> np.ndarray:
    """A PIL image or an array ([H, W], [H, W, C] or [C, H, W]) as [C, H, W], RGB if asked."""
    if is_pil_image(image):
        array = _rgb_from_pil(image) if do_convert_rgb else np.array(image)
        return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    array = np.asarray(image)
    if array.ndim == 2:
        array, input_data_format = array[None], CHANNELS_FIRST
    if array.ndim != 3:
        raise ValueError(f"An image has 2 or 3 dimensions ([H, W], [H, W, C] or [C, H, W]); got shape {array.shape}.")
    array = np.moveaxis(array, _channel_axis(array, input_data_format), -1)  # [H, W, C]
    if do_convert_rgb:
        array = _rgb_from_array(array)
    return np.moveaxis(array, -1, 0)


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    return (image.astype(np.float64) * scale).astype(np.float32)  # in float64 first, as transformers does


def _pil_needs_scaling(image: np.ndarray) -> bool:
    """Whether an array must be multiplied by 255 to become a uint8 PIL image (floats in [0, 1])."""
    if image.dtype == np.uint8:
        return False
    if np.allclose(image, image.astype(int)):
        if image.min() < 0 or image.max() > 255:
            raise ValueError(f"Cannot resize an integer image with values outside [0, 255] (it spans "
                             f"[{image.min()}, {image.max()}]).")
        return False
    if image.min() >= 0 and image.max() <= 1:
        return True
    raise ValueError(f"Cannot resize a float image with values outside [0, 1] (it spans [{image.min()}, {image.max()}]): "
                     "resize before normalising, or pass do_resize=False.")


def resize(image: np.ndarray, size: tuple[int, int], resample: int = BILINEAR) -> np.ndarray:
    """[C, H, W] -> [C, height, width] through a uint8 Pillow image (floats in [0, 1] go through 0..255)."""
    PIL = _pil()
    scaled = _pil_needs_scaling(image)
    pixels = np.moveaxis(rescale(image, 255) if scaled else image, 0, -1)  # [H, W, C]
    pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    height, width = size
    out = np.array(PIL.Image.fromarray(pixels.astype(np.uint8)).resize((width, height), resample=resample))
    out = np.moveaxis(out[..., None] if out.ndim == 2 else out, -1, 0)
    return rescale(out, 1 / 255) if scaled else out


def center_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The centre [C, height, width] of [C, H, W]; an image smaller than that is padded with zeros first."""
    height, width = image.shape[-2:]
    crop_height, crop_width = int(size[0]), int(size[1])
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    if top >= 0 and left >= 0:
        return image[..., top:top + crop_height, left:left + crop_width]
    padded_height, padded_width = max(crop_height, height), max(crop_width, width)
    pad_top, pad_left = ceil((padded_height - height) / 2), ceil((padded_width - width) / 2)
    padded = np.zeros_like(image, shape=(*image.shape[:-2], padded_height, padded_width))
    padded[..., pad_top:pad_top + height, pad_left:pad_left + width] = image
    top, left = top + pad_top, left + pad_left
    return padded[..., max(0, top):min(padded_height, top + crop_height), max(0, left):min(padded_width, left + crop_width)]


def normalize(image: np.ndarray, mean: float | Sequence[float], std: float | Sequence[float]) -> np.ndarray:
    """(image - mean) / std per channel of [C, H, W], in the image's float type (float32 for integers)."""
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32)
    channels = image.shape[0]
    per_channel = []
    for name, value in (("image_mean", mean), ("image_std", std)):
        values = list(np.ravel(value)) if np.ndim(value) else [value] * channels
        if len(values) != channels:
            raise ValueError(f"{name} has {len(values)} values but the image has {channels} channels; "
                             "pass do_convert_rgb=True for gray or RGBA images.")
        per_channel.append(np.array(values, dtype=image.dtype)[:, None, None])
    return (image - per_channel[0]) / per_channel[1]


# --- sizes -------------------------------------------------------------------------------------------
def size_dict(size: Any, default_to_square: bool = True, name: str = "size") -> dict[str, int]:
    """`size` as transformers' size dict: an int is a square (or, with default_to_square=False, the
    shortest edge), a pair is (height, width)."""
    if isinstance(size, Mapping):
        out = dict(size)
    elif isinstance(size, int):
        out = {"height": size, "width": size} if default_to_square else {"shortest_edge": size}
    elif isinstance(size, Sequence) and len(size) == 2:
        out = {"height": size[0], "width": size[1]}
    else:
        raise ValueError(f"{name}={size!r}; expected an int, (height, width) or a dict with keys "
                         f"{' or '.join(str(sorted(k)) for k in SIZE_KEYS)}.")
    if set(out) not in SIZE_KEYS:
        raise ValueError(f"{name}={size!r} has keys {sorted(out)}; expected one of "
                         f"{' or '.join(str(sorted(k)) for k in SIZE_KEYS)}.")
    return out


def shortest_edge_size(height: int, width: int, shortest: int, longest: int | None = None) -> tuple[int, int]:
    """(height, width) with the shorter edge `shortest` and the aspect ratio kept (int-truncated, as
    torchvision and transformers compute it); with `longest`, the longer edge at most that."""
    if longest is None:
        short, long = min(height, width), max(height, width)
        new_short, new_long = shortest, int(shortest * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)
    raw = None
    if max(height, width) / min(height, width) * shortest > longest:
        raw = longest * min(height, width) / max(height, width)
        shortest = int(round(raw))
    if min(height, width) == shortest:
        return height, width
    base = raw if raw is not None else shortest
    if width < height:
        return int(base * height / width), shortest
    return shortest, int(base * width / height)


def output_size(image: np.ndarray, size: dict[str, int]) -> tuple[int, int]:
    """The (height, width) that `size` asks of [C, H, W]."""
    if "height" in size:
        return size["height"], size["width"]
    return shortest_edge_size(*image.shape[-2:], size["shortest_edge"], size.get("longest_edge"))


# --- the processor -----------------------------------------------------------------------------------
class BatchFeature(dict):
    """A processor's outputs: a dict whose keys are also attributes (`batch.pixel_values`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class ImageProcessor(PushToHubMixin):
    """transformers' image processor of the same name, on Pillow and numpy. Call it on images (paths,
    PIL images, arrays [H, W, C] or [C, H, W], or lists of them) to get `pixel_values` [B, C, H, W].

    The class attributes are the defaults of the options (`OPTIONS`, plus a subclass's `EXTRA_OPTIONS`);
    a keyword, then `preprocessor_config.json`, overrides them. Keys of other processors are kept and saved.
    """

    OPTIONS = ("do_resize", "size", "resample", "default_to_square", "do_center_crop", "crop_size", "do_rescale",
               "rescale_factor", "do_normalize", "image_mean", "image_std", "do_convert_rgb")
    EXTRA_OPTIONS: tuple[str, ...] = ()
    model_input_names = ("pixel_values",)

    do_resize: bool = True
    size: Any = None
    resample: int = BILINEAR
    default_to_square: bool = True
    do_center_crop: bool | None = None
    crop_size: Any = None
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: Any = None
    image_std: Any = None
    do_convert_rgb: bool | None = None

    def __init__(self, **kwargs: Any):
        options = {name: kwargs.pop(name, None) for name in self.option_names()}
        for name, value in options.items():
            setattr(self, name, copy.deepcopy(getattr(type(self), name)) if value is None else value)
        self.__dict__.update(self._standardize(self.__dict__))
        self.extra = {k: v for k, v in kwargs.items() if k not in _TYPE_KEYS}

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return cls.OPTIONS + cls.EXTRA_OPTIONS

    def _standardize(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Sizes as size dicts, means and stds as tuples (options as one call resolves them)."""
        out = {}
        if options.get("size") is not None:
            out["size"] = size_dict(options["size"], bool(options.get("default_to_square", True)))
        if options.get("crop_size") is not None:
            out["crop_size"] = size_dict(options["crop_size"], name="crop_size")
        for name in ("image_mean", "image_std"):
            if isinstance(options.get(name), list):
                out[name] = tuple(options[name])
        return out

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self.option_names()))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown options {unknown}; it takes {list(self.option_names())}.")
        options = {name: getattr(self, name) if overrides.get(name) is None else overrides[name]
                   for name in self.option_names()}
        options.update(self._standardize(options))
        for flag, needs in (("do_resize", ("size",)), ("do_center_crop", ("crop_size",)),
                            ("do_rescale", ("rescale_factor",)), ("do_normalize", ("image_mean", "image_std"))):
            missing = [n for n in needs if options[flag] and options[n] is None]
            if missing:
                raise ValueError(f"{flag}=True needs {' and '.join(missing)}: pass it, or {flag}=False.")
        if options["resample"] not in (NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING):
            raise ValueError(f"resample={options['resample']!r}; expected a Pillow filter number 0-5 "
                             f"(BILINEAR={BILINEAR}, BICUBIC={BICUBIC}).")
        return options

    # --- the steps (a subclass overrides `resize` for its own sizing) -------------------------------
    def resize(self, image: np.ndarray, options: dict[str, Any]) -> np.ndarray:
        return resize(image, output_size(image, options["size"]), options["resample"])

    def process(self, image: np.ndarray, options: dict[str, Any]) -> np.ndarray:
        """One [C, H, W] image through resize, center crop, rescale and normalise."""
        if options["do_resize"]:
            image = self.resize(image, options)
        if options["do_center_crop"]:
            crop = options["crop_size"]
            if set(crop) != {"height", "width"}:
                raise ValueError(f"crop_size={crop!r}; expected {{'height': ..., 'width': ...}}.")
            image = center_crop(image, (crop["height"], crop["width"]))
        if options["do_rescale"]:
            image = rescale(image, options["rescale_factor"])
        if options["do_normalize"]:
            image = normalize(image, options["image_mean"], options["image_std"])
        return image.astype(np.float32)

    def __call__(self, images: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, **kwargs)

    def preprocess(self, images: Any, return_tensors: str | None = None, data_format: str = CHANNELS_FIRST,
                   input_data_format: str | None = None, **options: Any) -> BatchFeature:
        """`pixel_values`: a list of [C, H, W] float32 arrays, or with `return_tensors="np"` (or "jax") one
        [B, C, H, W] array. Options given here override the processor's for this call."""
        if return_tensors not in RETURN_TENSORS:
            raise ValueError(f"return_tensors={return_tensors!r}; flaxformers returns {RETURN_TENSORS} "
                             "(numpy or jax arrays).")
        if data_format not in (CHANNELS_FIRST, CHANNELS_LAST):
            raise ValueError(f"data_format={data_format!r}; expected {CHANNELS_FIRST!r} or {CHANNELS_LAST!r}.")
        resolved = self._options(options)
        pixels = []
        for image in flat_images(images):
            array = to_channels_first(image, bool(resolved["do_convert_rgb"]), input_data_format)
            array = self.process(array, resolved)
            pixels.append(array if data_format == CHANNELS_FIRST else np.moveaxis(array, 0, -1))
        if return_tensors is not None:
            if len({p.shape for p in pixels}) > 1:
                raise ValueError(f"The processed images have different shapes {sorted({p.shape for p in pixels})}; "
                                 "resize or center-crop them to one size, or pass return_tensors=None.")
            pixels = np.stack(pixels)
            if return_tensors == "jax":
                import jax.numpy as jnp

                pixels = jnp.asarray(pixels)
        return BatchFeature(pixel_values=pixels)

    # --- config ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        options = {name: getattr(self, name) for name in self.option_names()}
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
        return {**self.extra, **options, "image_processor_type": type(self).__name__}

    def save_pretrained(self, directory: str | os.PathLike) -> str:
        """preprocessor_config.json, which transformers' AutoImageProcessor loads as this class."""
        from flaxformers.checkpoints.io import atomic_write_text

        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, PREPROCESSOR_NAME)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], **kwargs: Any) -> ImageProcessor:
        return cls(**{**config, **kwargs})

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any) -> ImageProcessor:
        """This class with the options of the checkpoint's preprocessor_config.json (keywords override
        them); on `ImageProcessor` itself, the class the checkpoint names (`AutoImageProcessor`)."""
        from flaxformers.processors import AutoImageProcessor, read_preprocessor_config

        if cls is ImageProcessor:
            return AutoImageProcessor.from_pretrained(path_or_repo_id, **kwargs)
        hub = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        return cls.from_dict(read_preprocessor_config(path_or_repo_id, **hub) or {}, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__} {json.dumps(self.to_dict(), indent=2, sort_keys=True)}"


def flat_images(images: Any) -> list[Any]:
    """One image, a batch array [B, ...] or a (nested) list of images as a flat list; paths are loaded."""
    if isinstance(images, str | os.PathLike):
        return [load_image(images)]
    if is_pil_image(images):
        return [images]
    if isinstance(images, list | tuple):
        if not images:
            raise ValueError("No images given: pass an image, a list of images or a batch array.")
        return [image for item in images for image in flat_images(item)]
    array = np.asarray(images)
    if array.dtype == object or array.ndim not in (2, 3, 4):
        raise ValueError(f"Cannot read {type(images).__name__} of shape {array.shape} as images: pass paths, PIL "
                         "images, arrays [H, W, C] / [C, H, W], or a batch [B, ...].")
    return list(array) if array.ndim == 4 else [array]


__all__ = [
    "BICUBIC", "BILINEAR", "BatchFeature", "IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD", "IMAGENET_STANDARD_MEAN",
    "IMAGENET_STANDARD_STD", "ImageProcessor", "PREPROCESSOR_NAME", "center_crop", "flat_images", "is_pil_image",
    "load_image", "normalize", "output_size", "rescale", "resize", "shortest_edge_size", "size_dict",
    "to_channels_first",
]

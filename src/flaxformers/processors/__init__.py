"""Processors: images to `pixel_values` (on Pillow and numpy), and text and images together.

`AutoImageProcessor.from_pretrained(dir)` reads `preprocessor_config.json` and builds the class it
names (`image_processor_type`, or a legacy `feature_extractor_type`), which a family exports; a
config that names none gets the class the family of `config.json`'s `model_type` declares.
`AutoProcessor.from_pretrained(dir)` adds the tokenizer when the checkpoint has one (CLIP).
"""

from __future__ import annotations

import json
import os
from typing import Any

from flaxformers.checkpoints.hub import PushToHubMixin, resolve_file
from flaxformers.processors.image import (
    PREPROCESSOR_NAME,
    BatchFeature,
    ImageProcessor,
    load_image,
)

PROCESSOR_NAME = "processor_config.json"
_HUB_KEYS = ("revision", "cache_dir", "local_files_only", "token")


def _read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds {type(data).__name__}, not a JSON object of processor options.")
    return data


def read_preprocessor_config(path_or_repo_id: str | os.PathLike, **hub: Any) -> dict[str, Any] | None:
    """The image processor options of a checkpoint: processor_config.json's `image_processor`, else
    preprocessor_config.json; None when it has neither."""
    combined = resolve_file(path_or_repo_id, PROCESSOR_NAME, required=False, **hub)
    if combined is not None and "image_processor" in (data := _read_json(combined)):
        return data["image_processor"]
    path = resolve_file(path_or_repo_id, PREPROCESSOR_NAME, required=False, **hub)
    return None if path is None else _read_json(path)


def _known_classes() -> list[str]:
    from flaxformers import registry

    return sorted({f.image_processor for f in registry.families() if f.image_processor})


def image_processor_class(name: str) -> type[ImageProcessor]:
    """The class for transformers' name of an image processor (its `...Fast`, `...Pil` and legacy
    `...FeatureExtractor` names too)."""
    from flaxformers import registry

    base = name.replace("FeatureExtractor", "ImageProcessor").removesuffix("Fast").removesuffix("Pil")
    cls = registry.export(base)
    if not (isinstance(cls, type) and issubclass(cls, ImageProcessor)):
        raise ValueError(f"Image processor {name!r} is not supported; flaxformers has {_known_classes()}. "
                         "Check image_processor_type in preprocessor_config.json.")
    return cls


def _class_of_model(path_or_repo_id: str | os.PathLike, hub: dict[str, Any]) -> str:
    from flaxformers import registry
    from flaxformers.auto import read_model_type

    model_type = read_model_type(path_or_repo_id, **hub)
    family, _ = registry.lookup(model_type)
    if family.image_processor is None:
        raise ValueError(f"model_type={model_type!r} declares no image processor, and preprocessor_config.json names "
                         f"none: add image_processor_type (one of {_known_classes()}).")
    return family.image_processor


class AutoFeatureExtractor:
    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs: Any) -> Any:
        """The checkpoint's audio feature extractor: the class `preprocessor_config.json` names
        (`feature_extractor_type`), which a family exports; keywords override its options."""
        from flaxformers import registry

        hub = {k: kwargs.pop(k) for k in _HUB_KEYS if k in kwargs}
        config = read_preprocessor_config(path_or_repo_id, **hub)
        if config is None:
            raise FileNotFoundError(f"{os.fspath(path_or_repo_id)!r} has no {PREPROCESSOR_NAME}: an audio checkpoint "
                                    "ships its feature extractor options there.")
        name = config.get("feature_extractor_type")
        cls = registry.export(name) if name else None
        if not isinstance(cls, type):
            raise ValueError(f"{PREPROCESSOR_NAME} names feature_extractor_type={name!r}, which flaxformers does "
                             "not have (e.g. WhisperFeatureExtractor, Wav2Vec2FeatureExtractor).")
        return cls(**{**config, **kwargs})


class AutoImageProcessor:
    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs: Any) -> ImageProcessor:
        """The checkpoint's image processor; keywords override its options (e.g. `size=`, `do_center_crop=`)."""
        hub = {k: kwargs.pop(k) for k in _HUB_KEYS if k in kwargs}
        config = read_preprocessor_config(path_or_repo_id, **hub)
        if config is None:
            raise OSError(f"{os.fspath(path_or_repo_id)!r} has no {PREPROCESSOR_NAME} (nor {PROCESSOR_NAME}): it is "
                          "not an image checkpoint, or its image processor was not saved with it.")
        name = config.get("image_processor_type") or config.get("feature_extractor_type")
        return image_processor_class(name or _class_of_model(path_or_repo_id, hub)).from_dict(config, **kwargs)


class Processor(PushToHubMixin):
    """A tokenizer and an image processor under one call, as transformers' CLIPProcessor:
    `processor(text=..., images=...)` gives `input_ids`, `attention_mask` and `pixel_values`."""

    def __init__(self, image_processor: ImageProcessor, tokenizer: Any):
        self.image_processor, self.tokenizer = image_processor, tokenizer

    def __call__(self, text: Any = None, images: Any = None, return_tensors: str | None = "np",
                 **kwargs: Any) -> BatchFeature:
        """Keywords that are image processor options go to it; the others to the tokenizer."""
        if text is None and images is None:
            raise ValueError("Pass text=, images= or both.")
        image_options = {k: kwargs.pop(k) for k in list(kwargs) if k in self.image_processor.option_names()}
        out = BatchFeature()
        if text is not None:
            out.update(self.tokenizer(text, **kwargs))
        if images is not None:
            out.update(self.image_processor(images, return_tensors=return_tensors, **image_options))
        return out

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> str:
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", *self.image_processor.model_input_names]

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        self.image_processor.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any) -> Processor:
        from flaxformers.tokenizers import AutoTokenizer

        hub = {k: kwargs[k] for k in _HUB_KEYS if k in kwargs}
        return cls(AutoImageProcessor.from_pretrained(path_or_repo_id, **kwargs),
                   AutoTokenizer.from_pretrained(path_or_repo_id, **hub))


class AutoProcessor:
    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs: Any) -> Any:
        """A `Processor` for a checkpoint with an image processor and a tokenizer, else the one it has."""
        from flaxformers.tokenizers import AutoTokenizer

        hub = {k: kwargs[k] for k in _HUB_KEYS if k in kwargs}
        if read_preprocessor_config(path_or_repo_id, **hub) is None:
            return AutoTokenizer.from_pretrained(path_or_repo_id, **kwargs)
        image_processor = AutoImageProcessor.from_pretrained(path_or_repo_id, **kwargs)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path_or_repo_id, **hub)
        except OSError:  # an image-only checkpoint
            return image_processor
        return Processor(image_processor, tokenizer)


__all__ = [
    "AutoFeatureExtractor", "AutoImageProcessor", "AutoProcessor", "BatchFeature", "ImageProcessor", "PREPROCESSOR_NAME", "Processor",
    "image_processor_class", "load_image", "read_preprocessor_config",
]

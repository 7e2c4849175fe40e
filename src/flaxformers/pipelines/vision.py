"""Image pipelines: image-classification, zero-shot-image-classification, image-feature-extraction and
image-to-text, with transformers' argument names and output shapes.

Images are paths, PIL images or arrays ([H, W, C] or [C, H, W]); a path or a PIL image is read as
transformers' `load_image` reads it (upright, RGB). A list of images gives a list of results.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from flaxformers.pipelines.base import (
    DEFAULT_BATCH_SIZE,
    LENGTH_BUCKET,
    Pipeline,
    map_batched,
    sigmoid,
    softmax,
)
from flaxformers.pipelines.text_classification import FUNCTIONS

# transformers' default for models whose generation config sets no length (4.57's image-to-text pipeline)
IMAGE_TO_TEXT_MAX_NEW_TOKENS = 256


def _image(image: Any) -> Any:
    """A path or PIL image as an upright RGB PIL image; an array as it is."""
    from flaxformers.processors.image import is_pil_image, load_image

    return load_image(image) if isinstance(image, str | os.PathLike) or is_pil_image(image) else np.asarray(image)


def _pad_rows(array: np.ndarray) -> np.ndarray:
    """[n, ...] -> [2^k, ...] with the last row repeated, so batches of similar size share a compile."""
    rows = 1 << (len(array) - 1).bit_length()
    return np.concatenate([array, np.repeat(array[-1:], rows - len(array), axis=0)])


def _jitted(model: Any, key: Any, fn: Any) -> Any:
    """`jax.jit(fn)`, kept on the model so that pipelines sharing a model share its compiled forwards."""
    store = model.__dict__.setdefault("_pipeline_forwards", {})
    if key not in store:
        store[key] = jax.jit(fn)
    return store[key]


class ImagePipeline(Pipeline):
    """A model with its image processor (and tokenizer, for the tasks with text)."""

    def __init__(self, model: Any, image_processor: Any, tokenizer: Any = None, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        self.image_processor = image_processor
        super().__init__(model, tokenizer, batch_size=batch_size, **options)

    def __call__(self, inputs: Any = None, **kwargs: Any) -> Any:
        inputs = kwargs.pop("images", inputs)
        if inputs is None:
            raise ValueError(f"The {self.task} pipeline needs images: pass paths, PIL images or arrays.")
        options, batch_size = self._call_options(kwargs)
        if not isinstance(inputs, list | tuple):
            return self._batch([inputs], options)[0]
        return map_batched(lambda batch: self._batch(batch, options), inputs, batch_size)

    def _pixels(self, images: list[Any], **processor_options: Any) -> np.ndarray:
        """[n, C, H, W] float32 of the images, as the image processor makes them."""
        return self.image_processor([_image(i) for i in images], return_tensors="np",
                                    **processor_options)["pixel_values"]

    def _output(self, fields: tuple[Any, ...], pixels: np.ndarray) -> list[np.ndarray]:
        """The model's `fields` (names or positions) for `pixels`, one row per image."""
        model = self.model
        forward = _jitted(model, ("pixels", fields), lambda params, pixels: [
            model(pixels, params=params)[f].astype("float32") for f in fields])
        return [np.asarray(o)[: len(pixels)] for o in forward(model.params, _pad_rows(pixels))]

    def _batch(self, images: list[Any], options: dict[str, Any]) -> list[Any]:
        raise NotImplementedError


class ImageClassificationPipeline(ImagePipeline):
    """`pipe(image_or_images, top_k=5, function_to_apply=None)` -> per image its labels `[{"label", "score"}]`,
    best first (at most `top_k`). Scores are the softmax of the logits, the sigmoid for one label or
    multi-label problems, the logits for regression, unless `function_to_apply` says otherwise."""

    task = "image-classification"

    def options(self, top_k: int | None = None, function_to_apply: str | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k={top_k!r}; expected an int >= 1.")
        if function_to_apply is not None and str(function_to_apply).lower() not in FUNCTIONS:
            raise ValueError(f"function_to_apply={function_to_apply!r}; expected one of {sorted(FUNCTIONS)}.")
        return {"top_k": top_k, "function_to_apply": None if function_to_apply is None else str(function_to_apply).lower()}

    def _function(self, name: str | None):
        config = self.model.config
        if name is not None:
            return FUNCTIONS[name]
        if config.problem_type == "regression":
            return FUNCTIONS["none"]
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return sigmoid
        return softmax

    def _batch(self, images: list[Any], options: dict[str, Any]) -> list[Any]:
        (logits,) = self._output(("logits",), self._pixels(images))  # [n, C]
        scores = self._function(options.get("function_to_apply"))(logits)
        id2label, top_k = self.model.config.id2label, min(options.get("top_k") or 5, self.model.config.num_labels)
        ranked = ([{"label": id2label[i], "score": float(s)} for i, s in enumerate(row)] for row in scores)
        return [sorted(row, key=lambda d: d["score"], reverse=True)[:top_k] for row in ranked]


class ImageFeatureExtractionPipeline(ImagePipeline):
    """`pipe(image_or_images, pool=False, return_tensors=False, image_processor_kwargs=None)` -> per image the
    model's first output as a [1, ...] nested list (with `pool=True` its `pooler_output`, [1, D]); an
    array with `return_tensors=True`."""

    task = "image-feature-extraction"

    def options(self, pool: bool | None = None, return_tensors: bool | None = None,
                image_processor_kwargs: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        return {"pool": pool, "return_tensors": return_tensors, "image_processor_kwargs": image_processor_kwargs}

    def _batch(self, images: list[Any], options: dict[str, Any]) -> list[Any]:
        field = "pooler_output" if options.get("pool") else 0
        pixels = self._pixels(images, **(options.get("image_processor_kwargs") or {}))
        try:
            (features,) = self._output((field,), pixels)
        except KeyError:
            raise ValueError("No pooled output was returned. Make sure the model has a `pooler` layer when using "
                             "the `pool` option.") from None
        rows = [f[None] for f in features]  # [1, ...] per image, as transformers runs one image at a time
        return rows if options.get("return_tensors") else [r.tolist() for r in rows]


class ZeroShotImageClassificationPipeline(ImagePipeline):
    """`pipe(image_or_images, candidate_labels=[...], hypothesis_template="This is a photo of {}.")` -> per
    image the labels `[{"score", "label"}]`, best first: the softmax of the image's similarity to each
    label's sentence (a text-and-image model: CLIP, a vision-text dual encoder)."""

    task = "zero-shot-image-classification"

    def options(self, candidate_labels: Sequence[str] | str | None = None, hypothesis_template: str | None = None,
                tokenizer_kwargs: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        if isinstance(candidate_labels, str):
            candidate_labels = [candidate_labels]
        if hypothesis_template is not None and "{}" not in hypothesis_template:
            raise ValueError(f"hypothesis_template={hypothesis_template!r} has no '{{}}' for the label.")
        return {"candidate_labels": None if candidate_labels is None else list(candidate_labels),
                "hypothesis_template": hypothesis_template, "tokenizer_kwargs": tokenizer_kwargs}

    def __call__(self, image: Any = None, candidate_labels: Sequence[str] | str | None = None, **kwargs: Any) -> Any:
        if candidate_labels is not None:
            kwargs["candidate_labels"] = candidate_labels
        return super().__call__(image, **kwargs)

    def _text(self, labels: list[str], options: dict[str, Any]) -> dict[str, np.ndarray]:
        template = options.get("hypothesis_template") or "This is a photo of {}."
        encoded = self.tokenizer([template.format(label) for label in labels],
                                 **{"padding": True, **(options.get("tokenizer_kwargs") or {})})
        length = encoded["input_ids"].shape[1]
        positions = getattr(getattr(self.model.config, "text_config", self.model.config), "max_position_embeddings",
                            None)
        width = max(min(-(-length // LENGTH_BUCKET) * LENGTH_BUCKET, positions or length), length)
        padded = {}
        for name in ("input_ids", "attention_mask"):
            full = np.full((len(labels), width), (self.tokenizer.pad_token_id or 0) if name == "input_ids" else 0,
                           np.int32)
            full[:, :length] = encoded[name]
            padded[name] = _pad_rows(full)
        return padded

    def _batch(self, images: list[Any], options: dict[str, Any]) -> list[Any]:
        labels = options.get("candidate_labels")
        if not labels:
            raise ValueError("zero-shot-image-classification needs candidate_labels=[...] (at least one label).")
        model, text = self.model, self._text(labels, options)
        forward = _jitted(model, ("zero-shot",), lambda params, pixels, text: model(
            text["input_ids"], pixels, attention_mask=text["attention_mask"], params=params).logits_per_image)
        pixels = self._pixels(images)
        logits = np.asarray(forward(model.params, _pad_rows(pixels), text))[: len(images), : len(labels)]
        return [[{"score": float(s), "label": label} for s, label in sorted(zip(row, labels), key=lambda x: -x[0])]
                for row in softmax(logits)]


class ImageToTextPipeline(ImagePipeline):
    """`pipe(image_or_images, max_new_tokens=None, generate_kwargs=None)` -> per image `[{"generated_text"}]`
    (one per returned sequence): the image encoder-decoder's `generate`, decoded without special tokens."""

    task = "image-to-text"

    def options(self, max_new_tokens: int | None = None, generate_kwargs: dict[str, Any] | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        generate_kwargs = dict(generate_kwargs or {})
        if max_new_tokens is not None:
            if "max_new_tokens" in generate_kwargs:
                raise ValueError("`max_new_tokens` is defined both as an argument and inside `generate_kwargs` "
                                 "argument, please use only 1 version")
            generate_kwargs["max_new_tokens"] = max_new_tokens
        return {"generate_kwargs": generate_kwargs or None}

    def _batch(self, images: list[Any], options: dict[str, Any]) -> list[Any]:
        generate_kwargs = dict(options.get("generate_kwargs") or {})
        config = self.model.generation_config
        if "max_new_tokens" not in generate_kwargs and "max_length" not in generate_kwargs \
                and config.max_new_tokens is None and config.max_length == 20:
            generate_kwargs["max_new_tokens"] = IMAGE_TO_TEXT_MAX_NEW_TOKENS
        per_image = generate_kwargs.get("num_return_sequences") or 1
        sequences = np.asarray(self.model.generate(_pad_rows(self._pixels(images)), **generate_kwargs).sequences)
        texts = [self.tokenizer.decode(row, skip_special_tokens=True) for row in sequences[: len(images) * per_image]]
        return [[{"generated_text": t} for t in texts[i: i + per_image]] for i in range(0, len(texts), per_image)]


__all__ = ["ImageClassificationPipeline", "ImageFeatureExtractionPipeline", "ImagePipeline", "ImageToTextPipeline",
           "ZeroShotImageClassificationPipeline"]

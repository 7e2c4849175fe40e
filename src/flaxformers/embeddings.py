"""Sentence (and image) embeddings, as sentence-transformers computes them.

`SentenceEmbedder.from_pretrained(dir)` reads the sentence-transformers files next to the weights
(`modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`): the pooling mode, whether a
`Normalize` module follows, and `max_seq_length`. `ImageTextEmbedder` puts texts and images in one
space with a text-and-image model (CLIP-style `get_text_features` / `get_image_features`). Batches
are padded to fixed shapes (batch size and a length bucket, or the processor's image size) so one
compiled forward serves every batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


def pool(hidden: jax.Array, mask: jax.Array, mode: str = "mean") -> jax.Array:
    """Pool token states [B, T, D] over the real tokens of `mask` [B, T] into [B, D]."""
    hidden = hidden.astype(jnp.float32)
    weights = mask.astype(jnp.float32)[..., None]  # [B, T, 1]
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return jnp.max(jnp.where(weights > 0, hidden, jnp.finfo(jnp.float32).min), axis=1)
    counts = jnp.maximum(weights.sum(axis=1), 1e-9)  # [B, 1]
    summed = (hidden * weights).sum(axis=1)
    if mode == "mean":
        return summed / counts
    if mode == "mean_sqrt_len":
        return summed / jnp.sqrt(counts)
    raise ValueError(f"pooling={mode!r}; expected one of {POOLING_MODES}.")


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def sentence_transformers_options(path: str | os.PathLike) -> dict[str, Any]:
    """Pooling, normalize and max_seq_length from a sentence-transformers directory (defaults: mean,
    no normalization, no limit when the files are absent)."""
    path = os.fspath(path)
    options: dict[str, Any] = {"pooling": "mean", "normalize": False, "max_seq_length": None}
    modules_file = os.path.join(path, "modules.json")
    modules = _read_json(modules_file) if os.path.isfile(modules_file) else []
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("Normalize"):
            options["normalize"] = True
        if kind.endswith("Pooling"):
            config_file = os.path.join(path, module.get("path", ""), "config.json")
            if os.path.isfile(config_file):
                config = _read_json(config_file)
                for mode in ("cls_token", "max_tokens", "mean_sqrt_len_tokens", "mean_tokens"):
                    if config.get(f"pooling_mode_{mode}"):
                        options["pooling"] = {"cls_token": "cls", "max_tokens": "max",
                                              "mean_sqrt_len_tokens": "mean_sqrt_len"}.get(mode, "mean")
                        break
    st_config = os.path.join(path, "sentence_bert_config.json")
    if os.path.isfile(st_config):
        options["max_seq_length"] = _read_json(st_config).get("max_seq_length")
    return options


def _bucket(length: int, multiple: int = 32) -> int:
    return -(-length // multiple) * multiple


def _encode(items: list, single: bool, what: str, batch_size: int,
            batches: Callable[[list, int], Iterator[tuple[np.ndarray, Any]]], forward: Callable[[Any], jax.Array],
            progress: Callable[[int], Any] | None) -> np.ndarray:
    """Vectors [N, D] of `items` in input order (one item: [D]), `batches(items, size)` through `forward`."""
    if not items:
        raise ValueError(f"encode() got no {what}s; pass at least one.")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1.")
    out = _gather(batches(items, min(batch_size, len(items))), forward, len(items), progress)
    return out[0] if single else out


def text_batches(tokenizer: Any, sentences: Sequence[str], batch_size: int,
                 max_seq_length: int | None) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """(indices, inputs) of fixed shape [batch_size, bucket]: longest sentences first, so each batch has
    similar lengths and the first compile is the largest bucket; padding rows are zeros."""
    order = np.argsort([-len(s) for s in sentences], kind="stable")
    for start in range(0, len(sentences), batch_size):
        index = order[start:start + batch_size]
        batch = tokenizer([sentences[i] for i in index], truncation=max_seq_length is not None, max_length=max_seq_length)
        length = batch["input_ids"].shape[1]
        width = min(_bucket(length), max(max_seq_length, length)) if max_seq_length else _bucket(length)
        padded = {}
        for key, value in batch.items():
            full = np.zeros((batch_size, width), np.int32)
            full[: value.shape[0], : value.shape[1]] = value
            if key == "input_ids" and tokenizer.pad_token_id:
                full[: value.shape[0], value.shape[1]:] = tokenizer.pad_token_id
            padded[key] = full
        yield index, padded


def image_batches(image_processor: Any, images: Sequence[Any],
                  batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices, pixel_values [batch_size, C, H, W]) in input order; padding rows are zeros."""
    for start in range(0, len(images), batch_size):
        index = np.arange(start, min(start + batch_size, len(images)))
        pixels = image_processor([images[i] for i in index], return_tensors="np")["pixel_values"]
        full = np.zeros((batch_size, *pixels.shape[1:]), np.float32)
        full[: len(index)] = pixels
        yield index, full


def _gather(batches: Iterator[tuple[np.ndarray, Any]], forward: Callable[[Any], jax.Array], count: int,
            progress: Callable[[int], Any] | None) -> np.ndarray:
    """Each batch's vectors at its indices of a [count, D] array; `progress(n)` after each batch."""
    out: np.ndarray | None = None
    for index, batch in batches:
        vectors = np.asarray(forward(batch))
        if out is None:
            out = np.zeros((count, vectors.shape[-1]), np.float32)
        out[index] = vectors[: len(index)]
        if progress is not None:
            progress(len(index))
    assert out is not None
    return out


class _TextEncoder:
    """`encode(sentences)` through the subclass's jitted `_text(params, inputs)`."""

    model: Any
    tokenizer: Any
    max_seq_length: int | None
    _text: Callable[[Any, dict[str, np.ndarray]], jax.Array]

    def encode(self, sentences: str | Sequence[str], batch_size: int = 32,
               progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Embeddings [N, D] in input order; `progress(n)` is called after each batch of n sentences."""
        single = isinstance(sentences, str)
        return _encode([sentences] if single else list(sentences), single, "sentence", batch_size,
                       lambda items, size: text_batches(self.tokenizer, items, size, self.max_seq_length),
                       lambda batch: self._text(self.model.params, batch), progress)


@dataclass
class SentenceEmbedder(_TextEncoder):
    """An encoder + its tokenizer + pooling: `encode(sentences) -> [N, D]` float32."""

    model: Any  # a base encoder model (its first output is the last hidden state)
    tokenizer: Any  # flaxformers.tokenizers.Tokenizer
    pooling: str = "mean"  # sentence-transformers' defaults for a plain encoder: mean pooling, no Normalize
    normalize: bool = False
    max_seq_length: int | None = None

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling={self.pooling!r}; expected one of {POOLING_MODES}.")
        limits = [m for m in (self.max_seq_length, self.tokenizer.model_max_length,
                              getattr(self.model.config, "max_position_embeddings", None)) if m]
        self.max_seq_length = min(limits) if limits else None
        pooling, normalize, model = self.pooling, self.normalize, self.model

        def forward(params, inputs):
            # Through the model's __call__, so its own input rules apply (e.g. positions from the ids).
            hidden = model(**model.accepted_inputs(inputs), params=params, return_dict=False)[0]
            pooled = pool(hidden, inputs["attention_mask"], pooling)
            return l2_normalize(pooled) if normalize else pooled

        self._text = jax.jit(forward)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, dtype: Any = jnp.float32, **overrides: Any):
        from flaxformers.auto import FlaxAutoModel
        from flaxformers.tokenizers import AutoTokenizer

        options = {**sentence_transformers_options(path), **overrides}
        return cls(FlaxAutoModel.from_pretrained(path, dtype=dtype), AutoTokenizer.from_pretrained(path), **options)


def is_image_text_model(model: Any) -> bool:
    """Whether a model puts texts and images in one space (`get_text_features` and `get_image_features`)."""
    return callable(getattr(model, "get_text_features", None)) and callable(getattr(model, "get_image_features", None))


@dataclass
class ImageTextEmbedder(_TextEncoder):
    """A text-and-image model (its `get_text_features` / `get_image_features`) with its tokenizer and
    image processor: `encode(sentences)` and `encode_images(images)` give vectors in one space, as
    sentence-transformers' CLIP models do (the projected features, L2-normalised when its modules
    list a Normalize, or with normalize=True)."""

    model: Any
    tokenizer: Any  # flaxformers.tokenizers.Tokenizer
    image_processor: Any  # flaxformers.processors.ImageProcessor
    normalize: bool = False
    max_seq_length: int | None = None

    def __post_init__(self) -> None:
        if not is_image_text_model(self.model):
            raise TypeError(f"{type(self.model).__name__} has no get_text_features and get_image_features: "
                            "ImageTextEmbedder needs a text-and-image model.")
        text_config = getattr(self.model.config, "text_config", self.model.config)
        limits = [m for m in (self.max_seq_length, self.tokenizer.model_max_length,
                              getattr(text_config, "max_position_embeddings", None)) if m]
        self.max_seq_length = min(limits) if limits else None
        model, normalize = self.model, self.normalize

        def text(params, inputs):
            features = model.get_text_features(inputs["input_ids"], inputs["attention_mask"], params=params)
            return l2_normalize(features) if normalize else features.astype(jnp.float32)

        def image(params, pixel_values):
            features = model.get_image_features(pixel_values, params=params)
            return l2_normalize(features) if normalize else features.astype(jnp.float32)

        self._text, self._image = jax.jit(text), jax.jit(image)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, dtype: Any = jnp.float32, **overrides: Any):
        embedder = load_embedder(path, dtype=dtype, **overrides)
        if not isinstance(embedder, cls):
            raise TypeError(f"{os.fspath(path)!r} is not a text-and-image model: use SentenceEmbedder.")
        return embedder

    def encode_images(self, images: Any, batch_size: int = 32,
                      progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Image vectors [N, D] in input order; images are paths, PIL images or arrays."""
        single = not isinstance(images, list | tuple)  # a path, a PIL image or one array
        return _encode([images] if single else list(images), single, "image", batch_size,
                       lambda items, size: image_batches(self.image_processor, items, size),
                       lambda batch: self._image(self.model.params, batch), progress)


def load_embedder(path: str | os.PathLike, *, dtype: Any = jnp.float32,
                  **overrides: Any) -> SentenceEmbedder | ImageTextEmbedder:
    """The embedder of a checkpoint: an `ImageTextEmbedder` for a text-and-image model, else a
    `SentenceEmbedder`; options from its sentence-transformers files, `overrides` win."""
    from flaxformers.auto import FlaxAutoModel
    from flaxformers.tokenizers import AutoTokenizer

    model = FlaxAutoModel.from_pretrained(path, dtype=dtype)
    options = {**sentence_transformers_options(path), **overrides}
    if not is_image_text_model(model):
        return SentenceEmbedder(model, AutoTokenizer.from_pretrained(path), **options)
    from flaxformers.processors import AutoImageProcessor

    if "pooling" in overrides:
        raise ValueError(f"pooling= applies to sentence encoders; {type(model).__name__} pools as it was trained.")
    options.pop("pooling")
    return ImageTextEmbedder(model, AutoTokenizer.from_pretrained(path), AutoImageProcessor.from_pretrained(path),
                             **options)


__all__ = [
    "ImageTextEmbedder", "POOLING_MODES", "SentenceEmbedder", "image_batches", "is_image_text_model", "l2_normalize",
    "load_embedder", "pool", "sentence_transformers_options", "text_batches",
]

"""Sentence embeddings from an encoder model, as sentence-transformers computes them.

`SentenceEmbedder.from_pretrained(dir)` reads the sentence-transformers files next to the weights
(`modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`): the pooling mode, whether a
`Normalize` module follows, and `max_seq_length`. Batches are padded to fixed shapes (batch size and
a length bucket) so one compiled forward serves every batch of a bucket.
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


@dataclass
class SentenceEmbedder:
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

        self._forward = jax.jit(forward)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, dtype: Any = jnp.float32, **overrides: Any):
        from flaxformers.auto import FlaxAutoModel
        from flaxformers.tokenizers import AutoTokenizer

        options = {**sentence_transformers_options(path), **overrides}
        return cls(FlaxAutoModel.from_pretrained(path, dtype=dtype), AutoTokenizer.from_pretrained(path), **options)

    def _batches(self, sentences: Sequence[str], batch_size: int) -> Iterator[tuple[np.ndarray, dict]]:
        # Longest first, so each batch has similar lengths and the first compile is the largest bucket.
        order = np.argsort([-len(s) for s in sentences], kind="stable")
        for start in range(0, len(sentences), batch_size):
            index = order[start:start + batch_size]
            yield index, self.tokenizer([sentences[i] for i in index], truncation=self.max_seq_length is not None,
                                        max_length=self.max_seq_length)

    def encode(self, sentences: str | Sequence[str], batch_size: int = 32,
               progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Embeddings [N, D] in input order; `progress(n)` is called after each batch of n sentences."""
        single = isinstance(sentences, str)
        sentences = [sentences] if single else list(sentences)
        if not sentences:
            raise ValueError("encode() got no sentences; pass at least one string.")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1.")
        out: np.ndarray | None = None
        batch_size = min(batch_size, len(sentences))
        for index, batch in self._batches(sentences, batch_size):
            width = _bucket(batch["input_ids"].shape[1])
            if self.max_seq_length:
                width = min(width, max(self.max_seq_length, batch["input_ids"].shape[1]))
            padded = {}
            for key, value in batch.items():  # to the fixed [batch_size, bucket] shape; padding rows are dropped
                full = np.zeros((batch_size, width), np.int32)
                full[: value.shape[0], : value.shape[1]] = value
                if key == "input_ids" and self.tokenizer.pad_token_id:
                    full[: value.shape[0], value.shape[1]:] = self.tokenizer.pad_token_id
                padded[key] = full
            embeddings = np.asarray(self._forward(self.model.params, padded))
            if out is None:
                out = np.zeros((len(sentences), embeddings.shape[-1]), np.float32)
            out[index] = embeddings[: len(index)]
            if progress is not None:
                progress(len(index))
        assert out is not None
        return out[0] if single else out


__all__ = ["SentenceEmbedder", "pool", "l2_normalize", "sentence_transformers_options", "POOLING_MODES"]

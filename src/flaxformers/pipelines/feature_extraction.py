"""feature-extraction (the last hidden states, [1, T, D] per text) and sentence-embeddings (pooled, [D] per text)."""

from __future__ import annotations

from typing import Any

import numpy as np

from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Forward, Pipeline, map_batched


class FeatureExtractionPipeline(Pipeline):
    """`pipe(text_or_texts, return_tensors=False)` -> per text the model's first output as a [1, T, D] nested
    list (an array with `return_tensors=True`)."""

    task = "feature-extraction"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        super().__init__(model, tokenizer, batch_size=batch_size, **options)
        self._forward = Forward(model, (0,))

    def options(self, truncation: bool | str | None = None, tokenize_kwargs: dict[str, Any] | None = None,
                return_tensors: bool | None = None) -> dict[str, Any]:
        tokenize_kwargs = dict(tokenize_kwargs or {})
        if truncation is not None:
            if "truncation" in tokenize_kwargs:
                raise ValueError("truncation is given twice (as an argument and in tokenize_kwargs); pass it once.")
            tokenize_kwargs["truncation"] = truncation
        return {"tokenize_kwargs": tokenize_kwargs or None, "return_tensors": return_tensors}

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        options, batch_size = self._call_options(kwargs)
        if isinstance(inputs, str):
            return self._batch([inputs], options)[0]
        return map_batched(lambda batch: self._batch(batch, options), inputs, batch_size)

    def _batch(self, texts: list[str], options: dict[str, Any]) -> list[Any]:
        encoded = self.tokenizer(texts, padding=True, padding_side="right", **options.get("tokenize_kwargs", {}))
        (hidden,) = self._forward(encoded, self.tokenizer.pad_token_id)  # [B, T', D]
        lengths = encoded["attention_mask"].sum(axis=1)
        features = [hidden[b, None, :length] for b, length in enumerate(lengths)]  # [1, T, D] each
        return features if options.get("return_tensors") else [f.tolist() for f in features]


class SentenceEmbeddingPipeline(Pipeline):
    """`pipe(text_or_texts, return_tensors=False)` -> one embedding per text (pooled as the model's
    sentence-transformers files say, or as `pipeline(..., pooling=, normalize=)` asks), on
    `flaxformers.embeddings.SentenceEmbedder`: a list of D floats, or [N, D] floats for a list."""

    task = "sentence-embeddings"

    def __init__(self, embedder: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        super().__init__(embedder.model, embedder.tokenizer, batch_size=batch_size, **options)
        self.embedder = embedder

    def options(self, return_tensors: bool | None = None) -> dict[str, Any]:
        return {"return_tensors": return_tensors}

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        options, batch_size = self._call_options(kwargs)
        if isinstance(inputs, str):
            return self._batch([inputs], options, batch_size)[0]
        if isinstance(inputs, list | tuple) and options.get("return_tensors"):
            return self.embedder.encode(list(inputs), batch_size=batch_size)  # [N, D]
        return map_batched(lambda batch: self._batch(batch, options, batch_size), inputs, batch_size)

    def _batch(self, texts: list[str], options: dict[str, Any], batch_size: int) -> list[Any]:
        embeddings = self.embedder.encode(texts, batch_size=batch_size)  # [N, D]
        return list(embeddings) if options.get("return_tensors") else [e.tolist() for e in np.asarray(embeddings)]


__all__ = ["FeatureExtractionPipeline", "SentenceEmbeddingPipeline"]

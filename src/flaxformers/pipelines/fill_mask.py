"""fill-mask: the most likely tokens behind each mask token, with transformers' scores and sequences."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Forward, Pipeline, map_batched, softmax

logger = logging.getLogger(__name__)


class FillMaskPipeline(Pipeline):
    """`pipe(text_or_texts, top_k=5, targets=None)` -> per text `[{"score", "token", "token_str", "sequence"}]`,
    or one such list per mask when a text has several."""

    task = "fill-mask"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        if tokenizer.mask_token_id is None:
            raise ValueError("fill-mask needs a tokenizer with a mask token (tokenizer.mask_token is None); "
                             "load the masked-LM checkpoint's own tokenizer.")
        super().__init__(model, tokenizer, batch_size=batch_size, **options)
        self._forward = Forward(model, ("logits",))

    def options(self, top_k: int | None = None, targets: str | list[str] | None = None,
                tokenizer_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k={top_k!r}; expected an int >= 1.")
        return {"top_k": top_k, "target_ids": None if targets is None else self._target_ids(targets),
                "tokenizer_kwargs": tokenizer_kwargs}

    def _target_ids(self, targets: str | list[str]) -> np.ndarray:
        """Vocabulary ids of `targets`; a target not in the vocabulary stands for its first token."""
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in [targets] if isinstance(targets, str) else targets:
            if target in vocab:
                ids.append(vocab[target])
                continue
            pieces = self.tokenizer.encode(target, add_special_tokens=False)
            if not pieces:
                logger.warning("The target %r is not in the vocabulary and has no tokens; ignoring it.", target)
                continue
            logger.warning("The target %r is not in the vocabulary; using its first token %r.", target,
                           self.tokenizer.convert_ids_to_tokens(pieces[0]))
            ids.append(pieces[0])
        if not ids:
            raise ValueError(f"targets={targets!r} gives no token; pass at least one word of the vocabulary.")
        return np.asarray(list(dict.fromkeys(ids)))

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        options, batch_size = self._call_options(kwargs)
        if isinstance(inputs, str):
            return self._batch([inputs], options)[0]
        results = map_batched(lambda batch: self._batch(batch, options), inputs, batch_size)
        return results[0] if isinstance(inputs, list) and len(inputs) == 1 else results

    def _batch(self, texts: list[str], options: dict[str, Any]) -> list[Any]:
        tokenizer = self.tokenizer
        encoded = tokenizer(texts, padding=True, padding_side="right", **options.get("tokenizer_kwargs", {}))
        (logits,) = self._forward(encoded, tokenizer.pad_token_id)  # [B, T', V]
        return [self._predictions(text, ids[mask == 1], logits[b], options)
                for b, (text, ids, mask) in enumerate(zip(texts, encoded["input_ids"], encoded["attention_mask"]))]

    def _predictions(self, text: str, ids: np.ndarray, logits: np.ndarray, options: dict[str, Any]) -> Any:
        positions = np.flatnonzero(ids == self.tokenizer.mask_token_id)
        if positions.size == 0:
            raise ValueError(f"{text!r} has no mask token: put {self.tokenizer.mask_token} where a token should be "
                             "predicted.")
        probs = softmax(logits[positions])  # [M, V]
        target_ids = options.get("target_ids")
        if target_ids is not None:
            probs = probs[:, target_ids]
        top_k = min(options.get("top_k", 5), probs.shape[-1])
        single = positions.size == 1
        rows = []
        for position, row in zip(positions, probs):
            predictions = []
            for index in np.argsort(-row, kind="stable")[:top_k]:
                token = int(index if target_ids is None else target_ids[index])
                filled = ids.copy()
                filled[position] = token
                filled = filled[filled != self.tokenizer.pad_token_id]
                # With several masks the others stay visible in each sequence, as transformers shows them.
                predictions.append({"score": float(row[index]), "token": token,
                                    "token_str": self.tokenizer.decode([token]),
                                    "sequence": self.tokenizer.decode(filled, skip_special_tokens=single)})
            rows.append(predictions)
        return rows[0] if single else rows


__all__ = ["FillMaskPipeline"]

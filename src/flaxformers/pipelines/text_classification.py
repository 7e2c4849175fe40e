"""text-classification (alias sentiment-analysis): labels and scores of texts and text pairs."""

from __future__ import annotations

from typing import Any

import numpy as np

from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Forward, Pipeline, map_batched, sigmoid, softmax

FUNCTIONS = {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}
_TOP_ONE = object()  # top_k not given: one {"label", "score"} dict per text, transformers' original shape


class TextClassificationPipeline(Pipeline):
    """`pipe(text_or_pair_or_list, top_k=..., function_to_apply=...)` -> `[{"label", "score"}]`.

    A text pair is `{"text": ..., "text_pair": ...}`. Without `top_k` each text gets its best label
    (a single string still gives a one-element list); with `top_k` (None: all labels) each text gets
    its labels sorted by score. Scores are the softmax of the logits for several labels, the sigmoid
    for one label or multi-label problems, the logits themselves for regression, unless
    `function_to_apply` ("softmax", "sigmoid", "none") says otherwise.
    """

    task = "text-classification"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        super().__init__(model, tokenizer, batch_size=batch_size, **options)
        self._forward = Forward(model, ("logits",))

    def options(self, top_k: Any = _TOP_ONE, function_to_apply: str | None = None, truncation: bool | str | None = None,
                max_length: int | None = None) -> dict[str, Any]:
        if top_k is not _TOP_ONE and top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k={top_k!r}; expected an int >= 1, or None for every label.")
        if function_to_apply is not None and str(function_to_apply).lower() not in FUNCTIONS:
            raise ValueError(f"function_to_apply={function_to_apply!r}; expected one of {sorted(FUNCTIONS)}.")
        return {"top_k": ("all" if top_k is None else top_k) if top_k is not _TOP_ONE else None,
                "function_to_apply": None if function_to_apply is None else str(function_to_apply).lower(),
                "truncation": truncation, "max_length": max_length}

    def __call__(self, inputs: str | dict | list, **kwargs: Any) -> Any:
        top_k_in_call = "top_k" in kwargs
        options, batch_size = self._call_options(kwargs)
        if isinstance(inputs, str | dict):
            result = self._batch([inputs], options)[0]
            # transformers wraps a single string's result in a list unless the call itself passes top_k
            return [result] if isinstance(inputs, str) and not top_k_in_call else result
        return map_batched(lambda batch: self._batch(batch, options), inputs, batch_size)

    def _function(self, name: str | None):
        if name is not None:
            return FUNCTIONS[name]
        config = self.model.config
        if config.problem_type == "regression":
            return FUNCTIONS["none"]
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return FUNCTIONS["sigmoid"]
        return FUNCTIONS["softmax"]

    def _batch(self, items: list[str | dict], options: dict[str, Any]) -> list[Any]:
        texts, pairs = [], []
        for item in items:
            if isinstance(item, dict):
                if set(item) - {"text", "text_pair"} or "text" not in item:
                    raise ValueError(f"A text pair is a dict with keys 'text' and 'text_pair'; got keys {sorted(item)}.")
                texts.append(item["text"])
                pairs.append(item.get("text_pair"))
            elif isinstance(item, str):
                texts.append(item)
                pairs.append(None)
            else:
                raise ValueError('text-classification takes strings, or text pairs as {"text": ..., "text_pair": ...} '
                                 f"dicts; got {type(item).__name__}.")
        if any(p is not None for p in pairs) and any(p is None for p in pairs):
            return [row for item in items for row in self._batch([item], options)]  # pairs and single texts apart
        encoded = self.tokenizer(texts, None if pairs[0] is None else pairs, padding=True, padding_side="right",
                                 truncation=options.get("truncation", False), max_length=options.get("max_length"))
        (logits,) = self._forward(encoded, self.tokenizer.pad_token_id)  # [B, C]
        scores = self._function(options.get("function_to_apply"))(logits)
        return [self._labels(row, options.get("top_k")) for row in scores]

    def _labels(self, scores: np.ndarray, top_k: Any) -> Any:
        id2label = self.model.config.id2label
        if top_k is None:
            best = int(scores.argmax())
            return {"label": id2label[best], "score": float(scores[best])}
        ranked = sorted(({"label": id2label[i], "score": float(s)} for i, s in enumerate(scores)),
                        key=lambda d: d["score"], reverse=True)
        return ranked if top_k == "all" else ranked[:top_k]


__all__ = ["TextClassificationPipeline"]

"""What every pipeline shares: call options checked by name, batches, and one compiled forward per shape."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

DEFAULT_BATCH_SIZE = 8
LENGTH_BUCKET = 32  # forwards pad the sequence length to a multiple of this, so one compile serves many inputs


class Pipeline:
    """A model and its tokenizer, called on inputs as transformers' pipelines are.

    Options given to the constructor (`pipeline("ner", aggregation_strategy="simple")`) are the
    defaults of every call; a call's own options override them. `batch_size` inputs go through the
    model together.
    """

    task: str = ""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size = _check_batch_size(batch_size)
        self._defaults = self._checked(options)

    def options(self, **kwargs: Any) -> dict[str, Any]:
        """The task's call options, validated; `None` means "not given". Subclasses list them by name."""
        return {}

    def _checked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        accepted = inspect.signature(self.options).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            unknown = sorted(set(kwargs) - set(accepted))
            if unknown:
                raise TypeError(f"The {self.task} pipeline got unknown arguments {unknown}; it accepts "
                                f"{sorted(accepted) + ['batch_size']}.")
        return {k: v for k, v in self.options(**kwargs).items() if v is not None}

    def _call_options(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """This call's options over the constructor's, and its batch size."""
        batch_size = _check_batch_size(kwargs.pop("batch_size", None) or self.batch_size)
        return {**self._defaults, **self._checked(kwargs)}, batch_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__}, batch_size={self.batch_size})"


SAMPLING_KEYS = frozenset({"temperature", "top_k", "top_p", "min_p"})


def with_generation_defaults(given: dict[str, Any], defaults: dict[str, Any], model: Any,
                             tokenizer: Any) -> dict[str, Any]:
    """The generate kwargs `given`, plus what transformers 5's generating pipelines add: the task's
    `defaults` for the settings that neither `given` nor the model's generation config set (the sampling
    ones only when sampling; no default `max_new_tokens` over a set `max_length`), and the tokenizer's
    pad token."""
    base = given.get("generation_config") or model.generation_config
    set_keys = {**(base.to_diff_dict() if base is not None else {}), **given}
    added = {k: v for k, v in defaults.items()
             if k not in set_keys and not (k == "max_new_tokens" and "max_length" in set_keys)}
    if getattr(tokenizer, "pad_token_id", None) is not None and "pad_token_id" not in set_keys:
        added["pad_token_id"] = tokenizer.pad_token_id
    if not {**set_keys, **added}.get("do_sample"):
        added = {k: v for k, v in added.items() if k not in SAMPLING_KEYS}
    return {**given, **added}


def _check_batch_size(batch_size: Any) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; expected an int >= 1.")
    return batch_size


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of `size` items (the last may be shorter); works on generators too."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def map_batched(fn: Callable[[list[Any]], list[Any]], items: Any, size: int) -> list[Any] | Iterator[Any]:
    """`fn` over `items` in batches: a list gives a list; a generator gives a lazy iterator, as in transformers."""
    results = (result for batch in batches(items, size) for result in fn(batch))
    return list(results) if isinstance(items, list | tuple) else results


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Forward:
    """An encoder-style model's forward, jitted once per padded shape, returning `fields` as numpy float32 (one
    row per input row; per-token fields are `LENGTH_BUCKET`-padded past the batch's length).

    Batches are padded on the right to a multiple of `LENGTH_BUCKET` tokens (capped by the model's
    positions) and to a power-of-two number of rows, so calls with similar inputs share a compile.
    Only the inputs the model takes are passed (some encoders take no `token_type_ids`).
    """

    def __init__(self, model: Any, fields: Sequence[str]):
        self.model, self.fields = model, tuple(fields)
        self.accepts = set(inspect.signature(model.__call__).parameters)
        # Kept on the model, so pipelines that share a model share its compiled forwards.
        store = model.__dict__.setdefault("_pipeline_forwards", {})
        if self.fields not in store:
            store[self.fields] = jax.jit(lambda params, inputs: tuple(
                model(**inputs, params=params)[f].astype("float32") for f in self.fields))
        self._forward = store[self.fields]

    def __call__(self, batch: dict[str, np.ndarray], pad_token_id: int | None) -> tuple[np.ndarray, ...]:
        rows, length = batch["input_ids"].shape
        width = -(-length // LENGTH_BUCKET) * LENGTH_BUCKET
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions:
            width = min(width, max(positions, length))
        padded_rows = 1 << (rows - 1).bit_length()
        inputs = {}
        for name, array in batch.items():
            if name not in self.accepts or array.ndim != 2:
                continue
            fill = (pad_token_id or 0) if name == "input_ids" else 0
            full = np.full((padded_rows, width), fill, np.int32)
            full[:rows, :length] = array
            full[rows:] = full[rows - 1]  # spare rows repeat a real one
            inputs[name] = full
        outputs = self._forward(self.model.params, inputs)
        return tuple(np.asarray(o)[:rows] for o in outputs)  # per-token fields keep the padded width


__all__ = ["Pipeline", "Forward", "batches", "map_batched", "softmax", "sigmoid", "DEFAULT_BATCH_SIZE"]

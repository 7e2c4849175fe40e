"""Logits processors and warpers: transformers' set, as jittable pytrees.

Each processor is called as `processor(input_ids, scores, cur_len)` like transformers 4.x Flax:
`input_ids` [B, L] is the static token buffer whose first `cur_len` columns are filled and `scores`
is [B, V]. Numeric settings (temperature, top_p, penalties, lengths, token ids) are pytree leaves,
so a new value reuses the compiled loop; only what changes shapes (ngram size, top-k bucket) is static.

`start` (default 0) is the buffer column where the caller's `input_ids` begin: the engine left-pads
prompts to a length bucket, and lengths count from `start` so they mean what they mean in transformers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = Any
NEG_INF = -float("inf")


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _token_mask(ids: Array, vocab_size: int) -> Array:
    """Boolean [V] mask of the token ids in `ids` [E] (ids outside the vocabulary are ignored)."""
    ids = jnp.asarray(ids, jnp.int32).reshape(-1)
    return jnp.zeros((vocab_size,), bool).at[ids].set(True, mode="drop")


def _rows_token_mask(ids: Array, valid: Array, vocab_size: int) -> Array:
    """Boolean [B, V]: True where a valid entry of `ids` [B, L] holds that token."""
    b = ids.shape[0]
    cols = jnp.where(valid, ids, vocab_size)  # invalid entries land in a spare column
    rows = jnp.broadcast_to(jnp.arange(b)[:, None], ids.shape)
    return jnp.zeros((b, vocab_size + 1), bool).at[rows, cols].set(True, mode="drop")[:, :vocab_size]


class FlaxLogitsProcessor(struct.PyTreeNode):
    """Base class: `__call__(input_ids [B, L], scores [B, V], cur_len) -> scores`."""

    def __call__(self, input_ids: Array, scores: Array, cur_len: Array) -> Array:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")


class FlaxLogitsWarper(FlaxLogitsProcessor):
    """Processors that only reshape the sampling distribution (applied when `do_sample=True`)."""


class FlaxLogitsProcessorList(list):
    """Applies its processors in order."""

    def __call__(self, input_ids: Array, scores: Array, cur_len: Array, **kwargs: Any) -> Array:
        for processor in self:
            scores = processor(input_ids, scores, cur_len)
        return scores


# --- warpers -------------------------------------------------------------------------------------
class FlaxTemperatureLogitsWarper(FlaxLogitsWarper):
    temperature: Array

    def __post_init__(self):
        if _is_number(self.temperature) and not self.temperature > 0:
            raise ValueError(
                f"`temperature` must be a strictly positive float, got {self.temperature}. "
                "For greedy decoding set `do_sample=False`."
            )

    def __call__(self, input_ids, scores, cur_len):
        return scores / jnp.asarray(self.temperature, scores.dtype)


def top_k_keep(scores_desc: Array, top_k: Array) -> Array:
    """On scores sorted descending [.., K]: keep the entries >= the `top_k`-th (ties kept, as transformers)."""
    k = jnp.clip(jnp.asarray(top_k, jnp.int32), 1, scores_desc.shape[-1])
    kth = jnp.take_along_axis(scores_desc, jnp.broadcast_to(k - 1, scores_desc.shape[:-1])[..., None], axis=-1)
    return scores_desc >= kth


def top_p_remove_sorted(scores_desc: Array, top_p: Array, min_tokens_to_keep: int = 1) -> Array:
    """On scores sorted descending [.., K]: True for the tail that top-p removes.

    transformers sorts ascending and removes tokens whose cumulative probability is <= 1 - top_p;
    the reversed view of a descending sort is that ascending order.
    """
    ascending = scores_desc[..., ::-1]
    cumulative = jnp.cumsum(jax.nn.softmax(ascending.astype(jnp.float32), axis=-1), axis=-1)
    remove = cumulative <= (1.0 - jnp.asarray(top_p, jnp.float32))
    keep_last = jnp.arange(ascending.shape[-1]) >= ascending.shape[-1] - min_tokens_to_keep
    return (remove & ~keep_last)[..., ::-1]


def min_p_remove(scores: Array, min_p: Array) -> Array:
    """True where the probability is below `min_p` times the top probability (the top token always stays)."""
    probs = jax.nn.softmax(scores.astype(jnp.float32), axis=-1)
    return probs < jnp.asarray(min_p, jnp.float32) * probs.max(axis=-1, keepdims=True)


class FlaxTopKLogitsWarper(FlaxLogitsWarper):
    """Keeps the `top_k` highest scores. `top_k` is static here (it sets a `lax.top_k` size)."""

    top_k: int = struct.field(pytree_node=False)
    filter_value: float = struct.field(pytree_node=False, default=NEG_INF)
    min_tokens_to_keep: int = struct.field(pytree_node=False, default=1)

    def __post_init__(self):
        if not isinstance(self.top_k, int) or self.top_k <= 0:
            raise ValueError(f"`top_k` must be a strictly positive integer, got {self.top_k}.")

    def __call__(self, input_ids, scores, cur_len):
        k = min(max(self.top_k, self.min_tokens_to_keep), scores.shape[-1])
        kth = jax.lax.top_k(scores, k)[0][..., -1:]
        return jnp.where(scores < kth, self.filter_value, scores)


class FlaxTopPLogitsWarper(FlaxLogitsWarper):
    """Nucleus filtering: keeps the smallest set of tokens whose probability mass exceeds `top_p`."""

    top_p: Array
    filter_value: float = struct.field(pytree_node=False, default=NEG_INF)
    min_tokens_to_keep: int = struct.field(pytree_node=False, default=1)

    def __post_init__(self):
        if _is_number(self.top_p) and not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"`top_p` must be a float in [0, 1], got {self.top_p}.")
        if self.min_tokens_to_keep < 1:
            raise ValueError(f"`min_tokens_to_keep` must be a positive integer, got {self.min_tokens_to_keep}.")

    def __call__(self, input_ids, scores, cur_len):
        sorted_scores, order = jax.lax.top_k(scores, scores.shape[-1])  # a full descending sort
        remove_sorted = top_p_remove_sorted(sorted_scores, self.top_p, self.min_tokens_to_keep)
        rows = jnp.arange(scores.shape[0])[:, None]
        remove = jnp.zeros(scores.shape, bool).at[rows, order].set(remove_sorted)
        return jnp.where(remove, self.filter_value, scores)


class FlaxMinPLogitsWarper(FlaxLogitsWarper):
    """Drops tokens whose probability is below `min_p` times the most likely token's."""

    min_p: Array
    filter_value: float = struct.field(pytree_node=False, default=NEG_INF)
    min_tokens_to_keep: int = struct.field(pytree_node=False, default=1)

    def __post_init__(self):
        if _is_number(self.min_p) and not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"`min_p` must be a float in [0, 1], got {self.min_p}.")
        if self.min_tokens_to_keep < 1:
            raise ValueError(f"`min_tokens_to_keep` must be a positive integer, got {self.min_tokens_to_keep}.")

    def __call__(self, input_ids, scores, cur_len):
        remove = min_p_remove(scores, self.min_p)
        if self.min_tokens_to_keep > 1:
            k = min(self.min_tokens_to_keep, scores.shape[-1])
            remove = remove & (scores < jax.lax.top_k(scores, k)[0][..., -1:])
        return jnp.where(remove, self.filter_value, scores)


# --- processors ----------------------------------------------------------------------------------
class FlaxRepetitionPenaltyLogitsProcessor(FlaxLogitsProcessor):
    """Divides positive (multiplies negative) scores of tokens already in the sequence by `penalty`.

    `prompt_ignore_length` (scalar or [B]) skips that many leading tokens: transformers 5 passes each
    row's left-padding length, so padding is not penalised.
    """

    penalty: Array
    prompt_ignore_length: Array = 0
    start: Array = 0

    def __post_init__(self):
        if _is_number(self.penalty) and not self.penalty > 0:
            raise ValueError(f"`repetition_penalty` must be a strictly positive float, got {self.penalty}.")

    def __call__(self, input_ids, scores, cur_len):
        b, length = input_ids.shape
        col = jnp.arange(length)[None, :]
        first = self.start + jnp.broadcast_to(jnp.asarray(self.prompt_ignore_length, jnp.int32), (b,))[:, None]
        present = _rows_token_mask(input_ids, (col >= first) & (col < cur_len), scores.shape[-1])
        penalty = jnp.asarray(self.penalty, scores.dtype)
        penalized = jnp.where(scores < 0, scores * penalty, scores / penalty)
        return jnp.where(present, penalized, scores)


class FlaxNoRepeatNGramLogitsProcessor(FlaxLogitsProcessor):
    """Bans every token that would complete an n-gram already present in the sequence."""

    ngram_size: int = struct.field(pytree_node=False)
    start: Array = 0

    def __post_init__(self):
        if not isinstance(self.ngram_size, int) or self.ngram_size <= 0:
            raise ValueError(f"`no_repeat_ngram_size` must be a strictly positive integer, got {self.ngram_size}.")

    def __call__(self, input_ids, scores, cur_len):
        n = self.ngram_size
        b, length = input_ids.shape
        if length < n:
            return scores
        num_windows = length - n + 1
        windows = jnp.stack([input_ids[:, j : j + num_windows] for j in range(n)], axis=-1)  # [B, W, n]
        first = jnp.clip(cur_len - (n - 1), 0, length - (n - 1))
        prefix = jax.lax.dynamic_slice_in_dim(input_ids, first, n - 1, axis=1)  # [B, n-1]: the current suffix
        i = jnp.arange(num_windows)[None, :]
        valid = (i >= self.start) & (i + n - 1 < cur_len) & (cur_len - self.start >= n)
        matches = jnp.all(windows[:, :, :-1] == prefix[:, None, :], axis=-1) & valid  # [B, W]
        banned = _rows_token_mask(windows[:, :, -1], matches, scores.shape[-1])
        return jnp.where(banned, NEG_INF, scores)


class FlaxMinLengthLogitsProcessor(FlaxLogitsProcessor):
    """Forbids the EOS tokens while the sequence is shorter than `min_length`."""

    min_length: Array
    eos_token_id: Array
    start: Array = 0

    def __post_init__(self):
        if _is_number(self.min_length) and self.min_length < 0:
            raise ValueError(f"`min_length` must be a non-negative integer, got {self.min_length}.")

    def __call__(self, input_ids, scores, cur_len):
        too_short = cur_len - self.start < self.min_length
        eos = _token_mask(self.eos_token_id, scores.shape[-1])
        return jnp.where(too_short & eos[None, :], NEG_INF, scores)


class FlaxMinNewTokensLengthLogitsProcessor(FlaxLogitsProcessor):
    """Forbids the EOS tokens until `min_new_tokens` tokens follow the prompt."""

    prompt_length_to_skip: Array
    min_new_tokens: Array
    eos_token_id: Array
    start: Array = 0

    def __call__(self, input_ids, scores, cur_len):
        too_short = cur_len - self.start - self.prompt_length_to_skip < self.min_new_tokens
        eos = _token_mask(self.eos_token_id, scores.shape[-1])
        return jnp.where(too_short & eos[None, :], NEG_INF, scores)


def _force(scores: Array, token_ids: Array, apply: Array) -> Array:
    """Where `apply`: -inf everywhere except `token_ids`, which get 0."""
    allowed = _token_mask(token_ids, scores.shape[-1])[None, :]
    return jnp.where(apply, jnp.where(allowed, 0.0, NEG_INF).astype(scores.dtype), scores)


class FlaxForcedBOSTokenLogitsProcessor(FlaxLogitsProcessor):
    """Forces `bos_token_id` as the first generated token (when the input is one token long)."""

    bos_token_id: Array
    start: Array = 0

    def __call__(self, input_ids, scores, cur_len):
        return _force(scores, self.bos_token_id, cur_len - self.start == 1)


class FlaxForcedEOSTokenLogitsProcessor(FlaxLogitsProcessor):
    """Forces an EOS token as the last token when `max_length` is reached."""

    max_length: Array
    eos_token_id: Array
    start: Array = 0

    def __call__(self, input_ids, scores, cur_len):
        return _force(scores, self.eos_token_id, cur_len - self.start == self.max_length - 1)


class FlaxForceTokensLogitsProcessor(FlaxLogitsProcessor):
    """Forces the token of `force_token_map` (index -> token id) at each listed index (`cur_len - start`).

    `force_token_map` may be given as pairs or a dict; it is kept as an array [M] with -1 where
    nothing is forced, so a new map of the same length reuses the compiled loop.
    """

    force_token_map: Array
    start: Array = 0

    def __post_init__(self):
        if isinstance(self.force_token_map, dict | list | tuple):
            forced = dict(self.force_token_map)
            if not forced or min(forced) < 0:
                raise ValueError(f"`forced_decoder_ids` must be [index, token_id] pairs with index >= 0, "
                                 f"got {self.force_token_map!r}.")
            array = np.full((max(forced) + 1,), -1, np.int32)
            for index, token in forced.items():
                array[index] = -1 if token is None else token
            object.__setattr__(self, "force_token_map", array)

    def __call__(self, input_ids, scores, cur_len):
        forced = jnp.asarray(self.force_token_map, jnp.int32)
        index = cur_len - self.start
        token = forced[jnp.clip(index, 0, forced.shape[0] - 1)]
        return _force(scores, token, (index < forced.shape[0]) & (token >= 0))


class FlaxSuppressTokensLogitsProcessor(FlaxLogitsProcessor):
    """Sets the scores of `suppress_tokens` to -inf at every step."""

    suppress_tokens: Array

    def __call__(self, input_ids, scores, cur_len):
        return jnp.where(_token_mask(self.suppress_tokens, scores.shape[-1])[None, :], NEG_INF, scores)


class FlaxSuppressTokensAtBeginLogitsProcessor(FlaxLogitsProcessor):
    """Sets the scores of `begin_suppress_tokens` to -inf at the first generated position."""

    begin_suppress_tokens: Array
    begin_index: Array
    start: Array = 0

    def __call__(self, input_ids, scores, cur_len):
        at_begin = cur_len - self.start == self.begin_index
        mask = _token_mask(self.begin_suppress_tokens, scores.shape[-1])[None, :]
        return jnp.where(at_begin & mask, NEG_INF, scores)


__all__ = [
    "FlaxLogitsProcessor",
    "FlaxLogitsWarper",
    "FlaxLogitsProcessorList",
    "FlaxTemperatureLogitsWarper",
    "FlaxTopKLogitsWarper",
    "FlaxTopPLogitsWarper",
    "FlaxMinPLogitsWarper",
    "FlaxRepetitionPenaltyLogitsProcessor",
    "FlaxNoRepeatNGramLogitsProcessor",
    "FlaxMinLengthLogitsProcessor",
    "FlaxMinNewTokensLengthLogitsProcessor",
    "FlaxForcedBOSTokenLogitsProcessor",
    "FlaxForcedEOSTokenLogitsProcessor",
    "FlaxForceTokensLogitsProcessor",
    "FlaxSuppressTokensLogitsProcessor",
    "FlaxSuppressTokensAtBeginLogitsProcessor",
    "top_k_keep",
    "top_p_remove_sorted",
    "min_p_remove",
]

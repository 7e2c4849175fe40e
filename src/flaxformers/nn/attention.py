"""Attention, its static KV cache and its masks: written once, used by every family.

Shapes use B batch, T query length, S key length, N query heads, K key/value heads,
G = N // K query heads per key/value head, H head dim.

Two cache layouts live in the calling module's `cache` collection:
  * transformers 4.x Flax's (`cached_key`, `cached_value` [B, S, K, H], one scalar `cache_index`),
    which `model.init_cache` builds, so its trees are interchangeable with theirs;
  * the generation engine's own (`key_slots` [B, K, S, H], `value_slots` [B, K, H, S], `slot_index` [B]):
    each row writes at its own position, which continuous batching needs, and keys and values are
    already in the layouts XLA's dots read fastest: both contract their minor axis (H for q.k, S for
    weights.v), which the CPU's fused GEMMs take as they are, where a value read as [S, H] is a
    transposed-operand GEMM at half the speed, and the 4.x layout costs a transposed copy of the whole
    cache per layer per step. `engine_cache(shapes)` turns an `init_cache` shape tree into it.

With the engine's cache, prompt chunks (T > 1 queries) attend block by block over the keys written so
far (`KEY_BLOCK` keys at a time, an online softmax), so a chunk neither reads the cache past its own
end nor builds a [T, S] score matrix; and `attend_to(n)` (a trace-time setting of the caller) limits
one-token steps to the first n key slots, so a step over short rows reads only their part of the cache.

Cross-attention over encoder states may keep its keys and values in the same collection
(`cross_key`, `cross_value` [B, S, K, H]): projected once when the decoder runs with `init_cache=True`,
then read at every step. The engine's cache holds them; 4.57's `init_cache` layout does not
(`CROSS_CACHE_NAMES` are left out of it), and then they are projected at every call, as 4.57 did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class AttentionSpec:
    """What varies between families' attention, as data."""

    scale: float  # multiplies q.k
    causal: bool = True
    sliding_window: int | None = None  # keys further back than this are masked (Gemma 2/3)
    softcap: float | None = None  # tanh soft-capping of the logits (Gemma 2)
    dropout_rate: float = 0.0


# Cross-attention keys and values of the encoder states, kept in the cache by encoder_key_value.
CROSS_CACHE_NAMES = ("cross_key", "cross_value")

# The engine's cache: rows at their own positions, keys [B, K, S, H] and values [B, K, H, S].
KEY_SLOTS, VALUE_SLOTS, SLOT_INDEX = "key_slots", "value_slots", "slot_index"
ROWS_LAYOUT = "bskh"  # keys and values of the 4.x cache (and of no cache)
KEY_SLOTS_LAYOUT, VALUE_SLOTS_LAYOUT = "bksh", "bkhs"  # the engine cache's keys, values
KEY_BLOCK = 512  # keys per step of a prompt chunk's blocked attention

# Key slots a one-token step over the engine cache attends to (None: all); see `attend_to`.
_ATTENDED_KEYS: ContextVar[int | None] = ContextVar("attended_keys", default=None)


@contextmanager
def attend_to(keys: int | None) -> Iterator[None]:
    """While tracing under this, one-token steps over the engine cache read only its first `keys` slots.

    The caller promises that every row it cares about sits below `keys` (the continuous batcher
    compiles one step per power-of-two bucket of its longest row); rows past it get garbage.
    """
    token = _ATTENDED_KEYS.set(keys)
    try:
        yield
    finally:
        _ATTENDED_KEYS.reset(token)


def engine_cache(init_cache_shapes: Any) -> dict:
    """A zeroed engine cache with the structure of an `init_cache` tree (arrays or shapes): every
    `cached_key`/`cached_value` [..., B, S, K, H] becomes `key_slots` [..., B, K, S, H] / `value_slots`
    [..., B, K, H, S] and `cache_index` a per-row `slot_index` [..., B] (leading axes: stacked layers). Cross-attention
    keys and values (`CROSS_CACHE_NAMES`, per-row already) are kept as they are."""
    if "cached_key" not in init_cache_shapes:
        return {k: engine_cache(v) if k not in CROSS_CACHE_NAMES else v for k, v in init_cache_shapes.items()}
    *lead, b, s, k, h = init_cache_shapes["cached_key"].shape
    dtype = init_cache_shapes["cached_key"].dtype
    return {KEY_SLOTS: jnp.zeros((*lead, b, k, s, h), dtype), VALUE_SLOTS: jnp.zeros((*lead, b, k, h, s), dtype),
            SLOT_INDEX: jnp.zeros((*lead, b), jnp.int32)}


def _write_slots(module: nn.Module, key: jax.Array, value: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Engine cache: the call's R rows (the cache's first R; the batcher steps a prefix of its slots)
    each write their T new keys at their own index, in place: one scatter per layer into the donated
    cache, no copy."""
    key_slots, value_slots = module.variable("cache", KEY_SLOTS), module.variable("cache", VALUE_SLOTS)
    index = module.variable("cache", SLOT_INDEX)
    rows, t = key.shape[:2]
    offsets = index.value[:rows]  # [R]
    row = jnp.arange(rows)[:, None]  # [R, 1]
    slot = offsets[:, None] + jnp.arange(t)  # [R, T]
    # Both index pairs select [R, T, K, H], the layout of the new keys and values.
    key_slots.value = key_slots.value.at[row, :, slot, :].set(key.astype(key_slots.value.dtype))
    value_slots.value = value_slots.value.at[row, :, :, slot].set(value.astype(value_slots.value.dtype))
    index.value = index.value.at[:rows].set(offsets + t)
    return key_slots.value[:rows], value_slots.value[:rows], offsets


def write_to_cache(
    module: nn.Module, key: jax.Array, value: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Write `key`/`value` [B,T,K,H] at the cache index; return the whole cache (in the cache's
    layout: [B,S,K,H], or [B,K,S,H] for the engine's) and the write offset (scalar, or [B]).

    On `init_cache` (no cache yet) the variables are created with the full length of `key`
    and nothing is written: the caller then sees keys of the whole (dummy) input.
    """
    if module.has_variable("cache", KEY_SLOTS):
        return _write_slots(module, key, value)
    initialized = module.has_variable("cache", "cached_key")
    cached_key = module.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
    cached_value = module.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
    cache_index = module.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
    offset = cache_index.value
    if not initialized:
        return key, value, offset
    start = (0, offset, 0, 0)
    cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, key.astype(cached_key.value.dtype), start)
    cached_value.value = jax.lax.dynamic_update_slice(
        cached_value.value, value.astype(cached_value.value.dtype), start
    )
    cache_index.value = offset + key.shape[1]
    return cached_key.value, cached_value.value, offset


def has_cache(module: nn.Module) -> bool:
    return module.has_variable("cache", "cached_key") or module.has_variable("cache", KEY_SLOTS)


def cache_window(module: nn.Module, query_len: int) -> tuple[jax.Array | int, int]:
    """(slot of the first query: a scalar, or one per row [B] in the engine's cache; number of key
    slots) of a self-attention call: the cache's when there is one, else the input's. Position biases
    that depend on both (T5's) are built from it."""
    if module.has_variable("cache", KEY_SLOTS):
        return module.get_variable("cache", SLOT_INDEX), _attended(module.get_variable("cache", KEY_SLOTS).shape[-2],
                                                                   query_len)
    if module.has_variable("cache", "cached_key"):
        return module.get_variable("cache", "cache_index"), module.get_variable("cache", "cached_key").shape[-3]
    return 0, query_len


def encoder_key_value(
    module: nn.Module, encoder_states: jax.Array, project, init_cache: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Keys and values [B, S, K, H] of the encoder states for cross-attention.

    `project(encoder_states)` computes them. With `init_cache=True` they are also stored in the
    `cache` collection, and every later call with that cache reads them instead of projecting again.
    """
    if module.has_variable("cache", CROSS_CACHE_NAMES[0]):
        return tuple(module.get_variable("cache", name) for name in CROSS_CACHE_NAMES)
    key, value = project(encoder_states)
    if init_cache:
        module.put_variable("cache", CROSS_CACHE_NAMES[0], key)
        module.put_variable("cache", CROSS_CACHE_NAMES[1], value)
    return key, value


def attention_mask_4d(
    query_len: int,
    key_len: int,
    query_offset: jax.Array | int = 0,
    padding_mask: jax.Array | None = None,
    causal: bool = True,
    sliding_window: int | None = None,
) -> jax.Array:
    """Boolean mask [B|1, 1, T, S]: True where query t may attend to key s.

    Queries sit at slots `query_offset + t` of the key axis; `query_offset` is a scalar or one per
    row [B]. `padding_mask` [B, S] marks real tokens (1) and padding (0). With a cache, keys at or past
    `query_offset + T` are not written yet (or are a previous request's), which the causal rule excludes.
    """
    q_slot = jnp.asarray(query_offset)[..., None, None] + jnp.arange(query_len)[:, None]  # [(B,) T, 1]
    k_slot = jnp.arange(key_len)[None, :]  # [1, S]
    mask = jnp.ones(q_slot.shape[:-1] + (key_len,), dtype=bool)
    if causal:
        mask = k_slot <= q_slot
    if sliding_window is not None:
        mask = mask & (q_slot - k_slot < sliding_window)
    mask = mask.reshape(-1, 1, query_len, key_len)  # [B|1, 1, T, S]
    if padding_mask is not None:
        mask = mask & (padding_mask[:, None, None, :key_len] > 0)
    return mask


def dot_product_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    spec: AttentionSpec,
    mask: jax.Array | None = None,
    bias: jax.Array | None = None,
    head_mask: jax.Array | None = None,
    dropout_rng: jax.Array | None = None,
    layout: str = ROWS_LAYOUT,
    value_layout: str | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Multi-, grouped- or single-query attention. Returns output [B,T,N,H] and weights [B,N,T,S].

    `key` is [B,S,K,H] (`layout="bskh"`) or the engine cache's [B,K,S,H] ("bksh"); `value` is in
    `value_layout` (default: `layout`; the engine cache's is "bkhs"). `mask` is boolean
    [B|1, 1|N, T, S]; `bias` is added to the logits (ALiBi); `head_mask` [N] scales each head's
    weights. Logits and softmax are computed in float32.
    """
    b, t, n, h = query.shape
    k, s = key.shape[layout.index("k")], key.shape[layout.index("s")]
    logits = _logits(query.reshape(b, t, k, n // k, h), key, spec, layout)
    logits = logits.reshape(b, n, t, s)  # [B, N, T, S]
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1)
    if dropout_rng is not None and spec.dropout_rate > 0.0:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - spec.dropout_rate, weights.shape)
        weights = jnp.where(keep, weights / (1.0 - spec.dropout_rate), 0.0)
    if head_mask is not None:
        weights = weights * head_mask.astype(weights.dtype)[None, :, None, None]
    weights = weights.astype(value.dtype)
    grouped_weights = weights.reshape(b, k, n // k, t, s)
    out = jnp.einsum(f"bkgts,{value_layout or layout}->btkgh", grouped_weights, value).reshape(b, t, n, h)
    return out, weights


def _logits(grouped_query: jax.Array, key: jax.Array, spec: AttentionSpec, layout: str) -> jax.Array:
    """Scaled (and soft-capped) float32 logits [B, K, G, T, S] of grouped queries [B, T, K, G, H]."""
    logits = jnp.einsum(f"btkgh,{layout}->bkgts", grouped_query, key, preferred_element_type=jnp.float32)
    logits = logits * spec.scale
    if spec.softcap is not None:
        logits = jnp.tanh(logits / spec.softcap) * spec.softcap
    return logits


def blocked_attention(
    query: jax.Array,
    key_slots: jax.Array,
    value_slots: jax.Array,
    spec: AttentionSpec,
    query_offset: jax.Array,
    padding_mask: jax.Array | None = None,
    bias: jax.Array | None = None,
    head_mask: jax.Array | None = None,
    block: int = KEY_BLOCK,
) -> jax.Array:
    """Attention of T queries [B,T,N,H] at slots `query_offset` [B] + t over the engine cache (keys
    [B,K,S,H], values [B,K,H,S]), `block` keys at a time with an online softmax: only the blocks below
    the last query's slot are read, and no score array is larger than [B, N, T, block]. Returns the
    output [B,T,N,H]; `bias` is [B|1, N|1, T|1, S]. Equal to `dot_product_attention` up to float
    rounding (a fully masked query row, which only padding has, averages over the blocks read)."""
    b, t, n, h = query.shape
    k, s = key_slots.shape[1], key_slots.shape[2]
    g, block = n // k, min(block, s)
    # [B, K, G*T, H], once: each block's two dots are then plain GEMMs contracting minor axes
    rows = query.reshape(b, t, k, g, h).transpose(0, 2, 3, 1, 4).reshape(b, k, g * t, h)
    blocks = (jnp.minimum(jnp.max(query_offset) + t, s) + block - 1) // block  # those holding a visible key

    def step(i, carry):
        best, total, acc = carry  # [B, K, G, T], [B, K, G, T], [B, K, G, T, H]
        nominal = i * block
        start = jnp.minimum(nominal, s - block)  # the last block may overlap the one before: masked below
        keys = jax.lax.dynamic_slice_in_dim(key_slots, start, block, axis=2)  # [B, K, block, H]
        values = jax.lax.dynamic_slice_in_dim(value_slots, start, block, axis=3)  # [B, K, H, block]
        logits = jnp.einsum("bkqh,bksh->bkqs", rows, keys, preferred_element_type=jnp.float32) * spec.scale
        if spec.softcap is not None:
            logits = jnp.tanh(logits / spec.softcap) * spec.softcap
        logits = logits.reshape(b, k, g, t, block)  # [B, K, G, T, block]
        if bias is not None:
            piece = jax.lax.dynamic_slice_in_dim(bias, start, block, axis=3).astype(jnp.float32)  # [B|1,N|1,T|1,blk]
            heads = (k, n // k) if piece.shape[1] == n else (1, 1)
            logits = logits + piece.reshape(piece.shape[0], *heads, piece.shape[2], block)
        padding = None if padding_mask is None else jax.lax.dynamic_slice_in_dim(padding_mask, start, block, axis=1)
        mask = attention_mask_4d(t, block, query_offset - start, padding, spec.causal, spec.sliding_window)
        mask = mask & (jnp.arange(block) + start >= nominal)  # [B|1, 1, T, block]
        logits = jnp.where(mask[:, :, None], logits, jnp.finfo(jnp.float32).min)
        new_best = jnp.maximum(best, jnp.max(logits, axis=-1))
        weights = jnp.exp(logits - new_best[..., None])
        rescale = jnp.exp(best - new_best)
        total = total * rescale + jnp.sum(weights, axis=-1)
        update = jnp.einsum(f"bkqs,{VALUE_SLOTS_LAYOUT}->bkqh", weights.astype(value_slots.dtype).reshape(
            b, k, g * t, block), values, preferred_element_type=jnp.float32)
        acc = acc * rescale[..., None] + update.reshape(b, k, g, t, h)
        return new_best, total, acc

    shape = (b, k, g, t)
    init = (jnp.full(shape, jnp.finfo(jnp.float32).min), jnp.zeros(shape, jnp.float32), jnp.zeros((*shape, h)))
    _, total, acc = jax.lax.fori_loop(0, blocks, step, init)
    out = (acc / total[..., None]).reshape(b, n, t, h)  # [B, N, T, H]
    if head_mask is not None:
        out = out * head_mask.astype(out.dtype)[None, :, None, None]
    return out.transpose(0, 2, 1, 3).astype(query.dtype)  # [B, T, N, H]


def _attended(key_len: int, query_len: int) -> int:
    """Key slots a call over the engine cache reads: `attend_to`'s limit for one-token steps."""
    limit = _ATTENDED_KEYS.get()
    return key_len if limit is None or query_len > 1 else min(limit, key_len)


def self_attention(
    module: nn.Module,
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    spec: AttentionSpec,
    padding_mask: jax.Array | None,
    *,
    init_cache: bool = False,
    bias_fn=None,
    head_mask: jax.Array | None = None,
    deterministic: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Self-attention with the optional static cache: the one place that joins cache and masks.

    `padding_mask` is [B, S]: the whole cache length when a cache is used, else the input length.
    `bias_fn(key_len)` may return an additive bias [B, N|1, T|1, S] (ALiBi).
    """
    offset: jax.Array | int = 0
    slots = spec.causal and module.has_variable("cache", KEY_SLOTS)
    layout, value_layout = (KEY_SLOTS_LAYOUT, VALUE_SLOTS_LAYOUT) if slots else (ROWS_LAYOUT, ROWS_LAYOUT)
    if spec.causal and (has_cache(module) or init_cache):
        key, value, offset = write_to_cache(module, key, value)
    dropout_rng = None
    if not deterministic and spec.dropout_rate > 0.0:
        dropout_rng = module.make_rng("dropout")
    if slots and query.shape[1] > 1 and dropout_rng is None:  # a prompt chunk: only the keys written so far
        bias = bias_fn(key.shape[2]) if bias_fn is not None else None
        return blocked_attention(query, key, value, spec, offset, padding_mask, bias, head_mask), None
    if slots:  # a one-token step: `attend_to`'s first slots
        key_len = _attended(key.shape[2], query.shape[1])
        key, value = key[:, :, :key_len], value[..., :key_len]
    key_len = key.shape[layout.index("s")]
    mask = attention_mask_4d(
        query.shape[1], key_len, offset, padding_mask, causal=spec.causal, sliding_window=spec.sliding_window
    )
    bias = bias_fn(key_len) if bias_fn is not None else None
    return dot_product_attention(query, key, value, spec, mask, bias, head_mask, dropout_rng, layout, value_layout)


def cross_attention(
    module: nn.Module,
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    spec: AttentionSpec,
    encoder_padding_mask: jax.Array | None,
    *,
    head_mask: jax.Array | None = None,
    deterministic: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Attention over encoder states: no causality, no cache, encoder padding masked."""
    mask = None if encoder_padding_mask is None else (encoder_padding_mask[:, None, None, :] > 0)
    dropout_rng = None
    if not deterministic and spec.dropout_rate > 0.0:
        dropout_rng = module.make_rng("dropout")
    return dot_product_attention(query, key, value, spec, mask, None, head_mask, dropout_rng)


class MultiHeadAttention(nn.Module):
    """Multi-head attention between `q_proj`, `k_proj`, `v_proj` and `out_proj` (nn.Dense, [in, out] kernels).

    Self-attention (with the static cache) over `hidden`, or cross-attention over `key_value_states`.
    `rotate(query, key)`, when given, turns the projected queries and keys (rotary positions) before
    the keys are cached. Residual dropout is the caller's.
    """

    num_heads: int
    spec: AttentionSpec
    qkv_bias: bool = True
    out_bias: bool = True
    kernel_init: Any = nn.initializers.normal(0.02)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(
        self,
        hidden: jax.Array,
        padding_mask: jax.Array | None,
        key_value_states: jax.Array | None = None,
        rotate: Any = None,
        deterministic: bool = True,
        init_cache: bool = False,
    ) -> tuple[jax.Array, jax.Array]:
        b, t, d = hidden.shape
        n = self.num_heads
        dense = lambda bias, name: nn.Dense(  # noqa: E731
            d, use_bias=bias, dtype=self.dtype, kernel_init=self.kernel_init, name=name
        )
        source = hidden if key_value_states is None else key_value_states
        heads = lambda x: x.reshape(x.shape[0], x.shape[1], n, d // n)  # noqa: E731  [B, T|S, N, H]
        query = heads(dense(self.qkv_bias, "q_proj")(hidden))
        key = heads(dense(self.qkv_bias, "k_proj")(source))
        value = heads(dense(self.qkv_bias, "v_proj")(source))
        if rotate is not None:
            query, key = rotate(query, key)
        if key_value_states is None:
            out, weights = self_attention(
                self, query, key, value, self.spec, padding_mask, init_cache=init_cache, deterministic=deterministic
            )
        else:
            out, weights = cross_attention(self, query, key, value, self.spec, padding_mask, deterministic=deterministic)
        return dense(self.out_bias, "out_proj")(out.reshape(b, t, d)), weights  # [B, T, D]

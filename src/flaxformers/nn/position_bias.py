"""Bucketed relative position bias (Mesh TensorFlow's, as T5-style models use it), written once.

A query at slot q and a key at slot k are `k - q` apart. Distances below `num_buckets // 2` (per
direction) get a bucket each; longer ones share logarithmically wider buckets up to `max_distance`,
past which they all fall in the last bucket. A learned table [num_buckets, N] turns buckets into a
per-head additive bias on the attention logits.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def relative_position_bucket(
    relative_position: jax.Array, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> jax.Array:
    """Bucket ids (int32) of `relative_position = key slot - query slot`.

    Bidirectional buckets spend half their range on keys after the query; unidirectional ones
    (causal decoders) see only keys at or before it.
    """
    buckets = jnp.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).astype(relative_position.dtype) * num_buckets
        distance = jnp.abs(relative_position)
    else:
        distance = -jnp.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # float32 throughout, with the log of the ratio taken in Python as PyTorch's T5 does: same buckets at the edges
    scaled = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (scaled * (num_buckets - max_exact)).astype(relative_position.dtype)
    large = jnp.minimum(large, num_buckets - 1)
    return (buckets + jnp.where(is_small, distance, large)).astype(jnp.int32)


def relative_position_buckets(
    query_len: int, key_len: int, query_offset: jax.Array | int = 0, *, bidirectional: bool,
    num_buckets: int, max_distance: int,
) -> jax.Array:
    """Buckets [(B,) T, S] of queries at slots `query_offset + t` against keys at slots `s`; a per-row
    `query_offset` [B] (the generation engine's cache) gives a leading batch axis."""
    query_slots = jnp.asarray(query_offset)[..., None, None] + jnp.arange(query_len)[:, None]  # [(B,) T, 1]
    key_slots = jnp.arange(key_len)[None, :]  # [1, S]
    return relative_position_bucket(key_slots - query_slots, bidirectional, num_buckets, max_distance)


def bias_from_buckets(table: jax.Array, buckets: jax.Array) -> jax.Array:
    """The per-head bias [B|1, N, T, S] of bucket ids [(B,) T, S] from a learned table [num_buckets, N]."""
    bias = jnp.moveaxis(jnp.take(table, buckets, axis=0), -1, -3)  # [(B,) N, T, S]
    return bias if bias.ndim == 4 else bias[None]


__all__ = ["bias_from_buckets", "relative_position_bucket", "relative_position_buckets"]

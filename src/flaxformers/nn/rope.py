"""Rotary position embeddings on the first `rotary_dim` dims of each head, in the interleaved layout.

The interleaved ("rotate every two") layout turns pairs (2i, 2i + 1) by `position * inv_freq[i]`,
as GPT-J (and RoFormer) rotate; the dims past `rotary_dim` pass through unrotated. (The rotate-half
layout of Llama and Gemma is `nn.layers.apply_rope`.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def apply_interleaved_rope(x: jax.Array, positions: jax.Array, rotary_dim: int, base: float = 10000.0) -> jax.Array:
    """Rotate x [B, T, N, H] by positions [B, T]: pairs (2i, 2i + 1) of the first `rotary_dim` dims."""
    exponents = np.arange(0, rotary_dim, 2, dtype=np.float32) / np.float32(rotary_dim)
    inv_freq = (1.0 / np.float32(base) ** exponents).astype(np.float32)  # [R/2], in float32 as transformers
    angles = jnp.repeat(positions.astype(jnp.float32)[..., None] * inv_freq, 2, axis=-1)  # [B, T, R]: f0 f0 f1 f1 ..
    cos, sin = jnp.cos(angles)[:, :, None, :].astype(x.dtype), jnp.sin(angles)[:, :, None, :].astype(x.dtype)
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    turned = jnp.stack([-rot[..., 1::2], rot[..., ::2]], axis=-1).reshape(rot.shape)  # (x0, x1) -> (-x1, x0)
    out = rot * cos + turned * sin
    return jnp.concatenate([out, rest], axis=-1) if rotary_dim < x.shape[-1] else out

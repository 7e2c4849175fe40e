"""Rotary position embeddings in the interleaved layout: features (2i, 2i+1) form the rotated pairs.

(The rotate-half layout of Llama and Gemma is `nn.layers.apply_rope`.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def apply_rope_interleaved(x: jax.Array, positions: jax.Array, base: float = 10000.0) -> jax.Array:
    """Rotate x [B, T, N, H] by positions [B, T]: pair i turns by position * base^(-2i/H) (GPT-J, RoFormer)."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (base ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))  # [H/2]
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, T, H/2]
    sin = jnp.repeat(jnp.sin(angles), 2, axis=-1)[:, :, None, :].astype(x.dtype)  # [B, T, 1, H]
    cos = jnp.repeat(jnp.cos(angles), 2, axis=-1)[:, :, None, :].astype(x.dtype)
    rotated = jnp.stack([-x[..., 1::2], x[..., 0::2]], axis=-1).reshape(x.shape)  # (-x1, x0, -x3, x2, ...)
    return x * cos + rotated * sin


__all__ = ["apply_rope_interleaved"]

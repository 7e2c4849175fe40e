"""Fixed sinusoidal positions, computed for the positions of a call (no table held in the graph)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def sinusoidal_positions(positions: jax.Array, dim: int, padding_idx: int | None = None) -> jax.Array:
    """Rows [B, T, dim] of fairseq's sinusoidal table (tensor2tensor's layout) at `positions` [B, T].

    Frequencies 10000 ** (-i / (dim // 2 - 1)) for i < dim // 2; a row holds the sines of
    `position * frequency`, then their cosines (not interleaved), then a zero column when `dim` is odd.
    The row of `padding_idx` is zeros. float32, as transformers builds its table.
    """
    half = dim // 2
    frequencies = np.exp(np.arange(half, dtype=np.float32) * -np.float32(math.log(10000) / (half - 1)))  # [dim/2]
    angles = positions.astype(jnp.float32)[..., None] * frequencies  # [B, T, dim / 2]
    rows = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
    if dim % 2:
        rows = jnp.pad(rows, [(0, 0)] * (rows.ndim - 1) + [(0, 1)])
    if padding_idx is not None:
        rows = jnp.where((positions == padding_idx)[..., None], 0.0, rows)
    return rows

"""Rotary position embeddings: every variant, written once (the parameters: `nn/rope_config.py`).

`rope_cos_sin(spec, positions, dtype)` gives the rotation tables of a call and `apply_rope(x, cos,
sin, spec)` rotates queries or keys [B, T, N, H] with them, as transformers 5 computes them: inverse
frequencies in float32, angles `position * inv_freq`, cos and sin scaled by the attention factor, then
cast to the compute dtype. Frequencies that are fixed by the config are numpy constants; the dynamic
and longrope ones follow the longest position of the call (max position id + 1 over the batch),
which transformers recomputes in its forward and we compute inside the jitted function.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.nn.rope_config import RopeSpec


def _exponents(spec: RopeSpec) -> np.ndarray:
    return np.arange(0, spec.rotary_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(spec.rotary_dim)


def static_inv_freq(spec: RopeSpec) -> np.ndarray:
    """The inverse frequencies [R/2] of the variants that the config fixes (float32)."""
    inv_freq = (1.0 / np.float32(spec.theta) ** _exponents(spec)).astype(np.float32)
    if spec.rope_type == "linear":
        return inv_freq / np.float32(spec.factor)
    if spec.rope_type == "llama3":
        return _llama3(spec, inv_freq)
    if spec.rope_type == "yarn":
        return _yarn(spec)
    return inv_freq


def _llama3(spec: RopeSpec, inv_freq: np.ndarray) -> np.ndarray:
    """Long wavelengths divided by `factor`, short ones kept, a smooth blend between."""
    old = spec.original_max_position_embeddings
    low_wavelen, high_wavelen = old / spec.low_freq_factor, old / spec.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > low_wavelen, inv_freq / spec.factor, inv_freq)
    smooth = (old / wavelen - spec.low_freq_factor) / (spec.high_freq_factor - spec.low_freq_factor)
    smoothed = (1 - smooth) * scaled / spec.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def _yarn(spec: RopeSpec) -> np.ndarray:
    """Interpolated (divided by `factor`) below the correction range, extrapolated above, a ramp between."""
    dim, base = spec.rotary_dim, spec.theta

    def correction_dim(rotations: float) -> float:
        return dim * math.log(spec.original_max_position_embeddings / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(spec.beta_fast), correction_dim(spec.beta_slow)
    if spec.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # no zero-width ramp
    pos_freqs = np.float32(base) ** _exponents(spec)
    ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - low) / (high - low), 0, 1)
    extrapolation = 1 - ramp
    inv_freq = (1.0 / (spec.factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
    return inv_freq.astype(np.float32)


def inv_freq(spec: RopeSpec, seq_len: jax.Array | int) -> jax.Array:
    """Inverse frequencies [R/2] for a call whose longest position is `seq_len - 1`."""
    if spec.rope_type == "dynamic":
        seq = jnp.maximum(jnp.asarray(seq_len, jnp.float32), spec.max_position_embeddings)
        dim = spec.rotary_dim
        base = spec.theta * (spec.factor * seq / spec.max_position_embeddings - (spec.factor - 1)) ** (dim / (dim - 2))
        return 1.0 / base ** jnp.asarray(_exponents(spec))
    if spec.rope_type == "longrope":
        long = jnp.asarray(seq_len) > spec.original_max_position_embeddings
        ext = jnp.where(long, jnp.asarray(spec.long_factor, jnp.float32), jnp.asarray(spec.short_factor, jnp.float32))
        return 1.0 / (ext * jnp.asarray(np.float32(spec.theta) ** _exponents(spec)))
    return jnp.asarray(static_inv_freq(spec))


def rope_cos_sin(spec: RopeSpec, positions: jax.Array, dtype: jnp.dtype) -> tuple[jax.Array, jax.Array]:
    """cos and sin [B, T, R] at `positions` [B, T], scaled by the attention factor, in `dtype`."""
    seq_len = jnp.max(positions) + 1 if spec.depends_on_length else 0
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq(spec, seq_len)  # [B, T, R/2]
    if spec.interleaved:
        angles = jnp.repeat(freqs, 2, axis=-1)  # [B, T, R]: f0 f0 f1 f1 ...
    else:
        angles = jnp.concatenate([freqs, freqs], axis=-1)  # [B, T, R]: f0 f1 ... f0 f1 ...
    cos, sin = jnp.cos(angles) * spec.attention_factor, jnp.sin(angles) * spec.attention_factor
    return cos.astype(dtype), sin.astype(dtype)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array, spec: RopeSpec) -> jax.Array:
    """Rotate the first `spec.rotary_dim` dims of x [B, T, N, H] by cos/sin [B, T, R]; the rest pass."""
    r = spec.rotary_dim
    rot, rest = x[..., :r], x[..., r:]
    if spec.interleaved:  # (x0, x1) -> (-x1, x0) per pair
        turned = jnp.stack([-rot[..., 1::2], rot[..., ::2]], axis=-1).reshape(rot.shape)
    else:  # first half against the second
        turned = jnp.concatenate([-rot[..., r // 2:], rot[..., : r // 2]], axis=-1)
    out = rot * cos[:, :, None, :] + turned * sin[:, :, None, :]
    return jnp.concatenate([out, rest], axis=-1) if r < x.shape[-1] else out


__all__ = ["apply_rope", "inv_freq", "rope_cos_sin", "static_inv_freq"]

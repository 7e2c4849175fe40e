"""Layers shared by the families: projections, norms, activations and ALiBi (RoPE: `nn/rope.py`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.configuration_utils import ACTIVATION_NAMES


# --- projections ---------------------------------------------------------------------------------
class DenseOutIn(nn.Module):
    """A dense layer whose `kernel` is stored [out, in], as transformers 4.x Flax GPT-2 stores Conv1D.

    The contraction reads the kernel in place ('btd,fd->btf'): no transposed copy is built,
    which is what made transformers' Flax GPT-2 decode slow.
    """

    features: int
    use_bias: bool = True
    dtype: jnp.dtype = jnp.float32
    kernel_init: Callable = nn.initializers.normal(stddev=0.02)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (self.features, x.shape[-1]))  # [out, in]
        y = jnp.einsum("...d,fd->...f", x.astype(self.dtype), kernel.astype(self.dtype))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
        return y


def tied_logits(hidden: jax.Array, embedding: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """Logits against the input embedding [V, D], read in place (no `embedding.T` per step)."""
    return jnp.einsum("btd,vd->btv", hidden.astype(dtype), embedding.astype(dtype))


# --- norms ---------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    """RMS norm computed in float32. `offset=1.0` gives Gemma's `x * (1 + w)` with `w` initialised at 0."""

    epsilon: float = 1e-6
    offset: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.zeros if self.offset else nn.initializers.ones
        weight = self.param("weight", init, (x.shape[-1],))
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.epsilon)
        return (normed * (self.offset + weight.astype(jnp.float32))).astype(self.dtype)


def layer_norm(epsilon: float, dtype: jnp.dtype, name: str | None = None, affine: bool = True) -> nn.LayerNorm:
    """transformers' LayerNorm: params `scale`/`bias` (none with `affine=False`), statistics in float32."""
    # Two-pass variance, as PyTorch: E[x^2] - E[x]^2 cancels when |mean| >> std (fp32 errors of 1e-5 there).
    return nn.LayerNorm(epsilon=epsilon, dtype=dtype, param_dtype=jnp.float32, use_bias=affine, use_scale=affine,
                        use_fast_variance=False, name=name)


# --- activations ---------------------------------------------------------------------------------
def _quick_gelu(x: jax.Array) -> jax.Array:
    return x * jax.nn.sigmoid(1.702 * x)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": partial(jax.nn.gelu, approximate=False),
    "gelu_new": partial(jax.nn.gelu, approximate=True),
    "gelu_pytorch_tanh": partial(jax.nn.gelu, approximate=True),
    "gelu_fast": partial(jax.nn.gelu, approximate=True),
    "gelu_python": partial(jax.nn.gelu, approximate=False),
    "quick_gelu": _quick_gelu,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda x: x,
}


assert set(ACTIVATIONS) == set(ACTIVATION_NAMES), "nn.layers.ACTIVATIONS and ACTIVATION_NAMES disagree"


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}.") from None


class FeedForward(nn.Module):
    """The classic transformer MLP: dense to `inner`, activation, dense back to `width`, dropout."""

    inner: int
    width: int
    activation_name: str
    dropout: float
    init_range: float
    names: tuple[str, str]  # the two dense layers' param names, as the family's checkpoints spell them
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden: jax.Array, deterministic: bool = True) -> jax.Array:
        init = nn.initializers.normal(self.init_range)
        hidden = nn.Dense(self.inner, dtype=self.dtype, kernel_init=init, name=self.names[0])(hidden)  # [B, T, F]
        hidden = nn.Dense(self.width, dtype=self.dtype, kernel_init=init, name=self.names[1])(
            activation(self.activation_name)(hidden))  # [B, T, D]
        return nn.Dropout(self.dropout)(hidden, deterministic=deterministic)


# --- ALiBi ---------------------------------------------------------------------------------------
def alibi_slopes(num_heads: int) -> np.ndarray:
    """Per-head slopes of ALiBi, including head counts that are not a power of two."""
    closest = 2 ** math.floor(math.log2(num_heads))
    base = 2.0 ** (-(2.0 ** -(math.log2(closest) - 3)))
    slopes = [base ** (i + 1) for i in range(closest)]
    if closest != num_heads:
        extra_base = 2.0 ** (-(2.0 ** -(math.log2(2 * closest) - 3)))
        slopes += [extra_base ** (2 * i + 1) for i in range(num_heads - closest)]
    return np.asarray(slopes, dtype=np.float32)


def alibi_bias(padding_mask: jax.Array, num_heads: int) -> jax.Array:
    """ALiBi bias [B, N, 1, S] from the padding mask [B, S]: a key's position counts real tokens only,
    so left padding does not shift it."""
    positions = (jnp.cumsum(padding_mask, axis=-1) - 1) * padding_mask  # [B, S]
    slopes = jnp.asarray(alibi_slopes(num_heads))  # [N]
    return (slopes[None, :, None] * positions[:, None, :].astype(jnp.float32))[:, :, None, :]


# --- fixed sinusoidal positions ------------------------------------------------------------------
def sinusoidal_positions(num_positions: int, dim: int) -> np.ndarray:
    """The [num_positions, dim] table of fixed positions: sines in the first half, cosines in the second
    (not interleaved), computed in float64 and rounded once to float32 as transformers does."""
    exponents = 2 * (np.arange(dim) // 2) / dim  # [D]
    angles = np.arange(num_positions)[:, None] / np.power(10000, exponents)[None, :]  # [P, D]
    sentinel = dim // 2 + dim % 2
    table = np.empty((num_positions, dim), np.float32)
    table[:, :sentinel] = np.sin(angles[:, 0::2])
    table[:, sentinel:] = np.cos(angles[:, 1::2])
    return table

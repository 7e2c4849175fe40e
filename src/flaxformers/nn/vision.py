"""Transformer-encoder pieces shared by the image families and CLIP's towers, written once.

Patch embeddings, stochastic depth, self-attention with named projections, the pre-norm block (with
optional layer scale), the block stack as transformers' `encoder`, BEiT-style 2-D relative position
bias, and PyTorch-exact bicubic resizing of position-embedding grids. Parameter names are given by the
caller, so every family keeps transformers 4.x Flax's param tree.

Pixels are channels-last here ([B, H, W, C]); the model classes transpose transformers' [B, C, H, W].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.nn.attention import AttentionSpec, self_attention
from flaxformers.nn.layers import activation, layer_norm
from flaxformers.nn.stack import LayerStack


def truncated_normal(std: float) -> Callable:
    """transformers 4.x Flax ViT's initializer: a truncated normal of standard deviation `std`."""
    return nn.initializers.variance_scaling(std**2, "fan_in", "truncated_normal")


# --- patches -----------------------------------------------------------------------------------------
def patch_conv(features: int, patch_size: int, dtype: jnp.dtype, kernel_init: Callable, use_bias: bool = True,
               name: str | None = None) -> nn.Conv:
    """The strided convolution that embeds non-overlapping `patch_size` patches."""
    return nn.Conv(features, (patch_size, patch_size), strides=(patch_size, patch_size), padding="VALID",
                   use_bias=use_bias, dtype=dtype, kernel_init=kernel_init, name=name)


def check_channels(pixel_values: jax.Array, num_channels: int) -> None:
    if pixel_values.shape[-1] != num_channels:
        raise ValueError(f"pixel_values has {pixel_values.shape[-1]} channels, but config.num_channels={num_channels}. "
                         "Pass images as [batch, num_channels, height, width].")


class PatchEmbeddings(nn.Module):
    """[B, H, W, C] pixels -> [B, N, D] patch vectors, through a convolution called `projection`."""

    hidden_size: int
    patch_size: int
    num_channels: int
    kernel_init: Callable
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pixel_values: jax.Array) -> jax.Array:
        check_channels(pixel_values, self.num_channels)
        patches = patch_conv(self.hidden_size, self.patch_size, self.dtype, self.kernel_init,
                             name="projection")(pixel_values)  # [B, H/p, W/p, D]
        return patches.reshape(patches.shape[0], -1, patches.shape[-1])


# --- position grids ----------------------------------------------------------------------------------
def _cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution weights of the taps at offsets -1, 0, 1, 2 (PyTorch's a = -0.75)."""
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of `torch.nn.functional.interpolate(mode="bicubic", align_corners=False)` along
    one axis: sample centres `(i + 0.5) * in / out - 0.5`, taps clamped at the border."""
    scale = in_size / out_size
    source = (np.arange(out_size) + 0.5) * scale - 0.5
    start = np.floor(source)
    weights = _cubic_weights(source - start)  # [out, 4]
    taps = np.clip(start[:, None].astype(int) + np.arange(-1, 3)[None, :], 0, in_size - 1)  # [out, 4]
    matrix = np.zeros((out_size, in_size))
    np.add.at(matrix, (np.repeat(np.arange(out_size), 4), taps.reshape(-1)), weights.reshape(-1))
    return matrix.astype(np.float32)


def resize_grid_bicubic(grid: jax.Array, height: int, width: int) -> jax.Array:
    """Position embeddings on an [h, w] grid ([..., h, w, D]) resized to [height, width] as PyTorch's
    bicubic interpolation does, in float32."""
    rows = jnp.asarray(bicubic_matrix(grid.shape[-3], height))  # [height, h]
    cols = jnp.asarray(bicubic_matrix(grid.shape[-2], width))  # [width, w]
    out = jnp.einsum("Hh,Ww,...hwd->...HWd", rows, cols, grid.astype(jnp.float32))
    return out.astype(grid.dtype)


def relative_position_index(window: tuple[int, int]) -> np.ndarray:
    """BEiT's [T, T] index into the relative-position table, T = Wh * Ww + 1 with the [CLS] token first.

    Patch pairs index their (dy, dx) offset; the last three entries are [CLS]->patch, patch->[CLS] and
    [CLS]->[CLS].
    """
    wh, ww = window
    num_distances = (2 * wh - 1) * (2 * ww - 1) + 3
    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")).reshape(2, -1)  # [2, P]
    delta = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)  # [P, P, 2]
    index = np.zeros((wh * ww + 1,) * 2, dtype=np.int32)
    index[1:, 1:] = (delta[..., 0] + wh - 1) * (2 * ww - 1) + delta[..., 1] + ww - 1
    index[0, :] = num_distances - 3
    index[:, 0] = num_distances - 2
    index[0, 0] = num_distances - 1
    return index


class RelativePositionBias(nn.Module):
    """A learned bias per head and relative (dy, dx) offset: [1, N, T, T] added to the attention logits."""

    window: tuple[int, int]
    num_heads: int

    @nn.compact
    def __call__(self) -> jax.Array:
        wh, ww = self.window
        table = self.param("relative_position_bias_table", nn.initializers.zeros,
                           ((2 * wh - 1) * (2 * ww - 1) + 3, self.num_heads))  # [distances, N]
        index = relative_position_index(self.window)  # [T, T]
        return jnp.transpose(table[index], (2, 0, 1))[None]  # [1, N, T, T]


# --- attention and MLPs ------------------------------------------------------------------------------
def drop_path(module: nn.Module, x: jax.Array, rate: float, deterministic: bool) -> jax.Array:
    """Stochastic depth: drop the whole residual branch of a random subset of rows in training."""
    if rate == 0.0 or deterministic:
        return x
    keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - rate, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class SelfAttention(nn.Module):
    """Query/key/value projections with the given names around the shared attention (`nn.attention`).

    `output_name` adds the output projection inside this module (CLIP's `out_proj`); `window` adds a
    per-layer `relative_position_bias` (BEiT). Returns [B, T, D] and the weights [B, N, T, S].
    """

    num_heads: int
    kernel_init: Callable
    names: tuple[str, str, str] = ("query", "key", "value")
    use_bias: tuple[bool, bool, bool] = (True, True, True)
    output_name: str | None = None
    causal: bool = False
    dropout_rate: float = 0.0
    window: tuple[int, int] | None = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden: jax.Array, bias: jax.Array | None = None, padding_mask: jax.Array | None = None,
                 deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
        b, t, d = hidden.shape
        n = self.num_heads
        heads = [
            nn.Dense(d, use_bias=use_bias, dtype=self.dtype, kernel_init=self.kernel_init, name=name)(hidden)
            .reshape(b, t, n, d // n)  # [B, T, N, H]
            for name, use_bias in zip(self.names, self.use_bias)
        ]
        if self.window is not None:
            own = RelativePositionBias(self.window, n, name="relative_position_bias")()
            bias = own if bias is None else own + bias
        spec = AttentionSpec(scale=(d // n) ** -0.5, causal=self.causal, dropout_rate=self.dropout_rate)
        out, weights = self_attention(self, *heads, spec, padding_mask, bias_fn=None if bias is None else lambda _: bias,
                                      deterministic=deterministic)
        out = out.reshape(b, t, d)
        if self.output_name is not None:
            out = nn.Dense(d, dtype=self.dtype, kernel_init=self.kernel_init, name=self.output_name)(out)
        return out, weights


class DenseModule(nn.Module):
    """A module holding one Dense called `dense`: transformers' `output.dense` and `intermediate.dense`."""

    features: int
    kernel_init: Callable
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(self.features, dtype=self.dtype, kernel_init=self.kernel_init, name="dense")(x)


class AttentionWithOutput(nn.Module):
    """transformers' vision attention layout: `attention.{query,key,value}` then `output.dense`."""

    num_heads: int
    kernel_init: Callable
    key_bias: bool = True
    qkv_bias: bool = True
    dropout_rate: float = 0.0  # on the attention weights
    hidden_dropout_rate: float = 0.0  # on the output
    window: tuple[int, int] | None = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden: jax.Array, bias: jax.Array | None, deterministic: bool) -> tuple[jax.Array, jax.Array]:
        use_bias = (self.qkv_bias, self.qkv_bias and self.key_bias, self.qkv_bias)
        out, weights = SelfAttention(self.num_heads, self.kernel_init, use_bias=use_bias, dropout_rate=self.dropout_rate,
                                     window=self.window, dtype=self.dtype, name="attention")(
            hidden, bias, deterministic=deterministic)
        out = DenseModule(hidden.shape[-1], self.kernel_init, self.dtype, name="output")(out)
        return nn.Dropout(self.hidden_dropout_rate)(out, deterministic=deterministic), weights


class FeedForward(nn.Module):
    """`fc1` -> activation -> `fc2` (CLIP's and DINOv2's `mlp`)."""

    intermediate_size: int
    activation: str
    kernel_init: Callable
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dense = lambda features, name: nn.Dense(features, dtype=self.dtype, kernel_init=self.kernel_init, name=name)  # noqa: E731
        return dense(x.shape[-1], "fc2")(activation(self.activation)(dense(self.intermediate_size, "fc1")(x)))


# --- the block and the stack -------------------------------------------------------------------------
class PreNormBlock(nn.Module):
    """`h = x + s1 * attention(norm1(x))`, then `h + s2 * mlp(norm2(h))`, each branch with stochastic depth.

    The block protocol of `LayerStack`. Subclasses write `attention(hidden, bias, padding_mask,
    deterministic) -> (out, weights)` and `mlp(hidden, deterministic)`, name the two norms, and may set
    the stochastic-depth rate and the layer scale: `layer_scale(config)` returns None, or the style and
    the initial value: "params" (`lambda_1` / `lambda_2` on the block, BEiT) or "modules"
    (`layer_scale1/lambda1`, DINOv2).
    """

    config: Any
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0
    norm_names: ClassVar[tuple[str, str]] = ("layernorm_before", "layernorm_after")

    def attention(self, hidden, bias, padding_mask, deterministic):
        raise NotImplementedError

    def mlp(self, hidden, deterministic):
        raise NotImplementedError

    @classmethod
    def drop_path_rate(cls, config: Any, layer_idx: int) -> float:
        return 0.0

    @classmethod
    def layer_scale(cls, config: Any) -> tuple[str, float] | None:
        return None

    @classmethod
    def layer_kind(cls, config: Any, layer_idx: int) -> Any:
        """Blocks differ only by their stochastic-depth rate (nn.stack's scan groups alike blocks)."""
        return cls.drop_path_rate(config, layer_idx)

    def _scale(self, x: jax.Array, index: int) -> jax.Array:
        scale = self.layer_scale(self.config)
        if scale is None:
            return x
        style, value = scale
        init = lambda _, shape: jnp.full(shape, value, jnp.float32)  # noqa: E731
        if style == "params":
            weight = self.param(f"lambda_{index}", init, (x.shape[-1],))
        else:
            weight = LayerScale(init, name=f"layer_scale{index}")(x.shape[-1])
        return weight.astype(x.dtype) * x

    @nn.compact
    def __call__(self, hidden, bias, padding_mask, deterministic=True, init_cache=False, output_attentions=False):
        eps = self.config.layer_norm_eps
        first, second = self.norm_names
        rate = self.drop_path_rate(self.config, self.layer_idx)
        out, weights = self.attention(layer_norm(eps, self.dtype, first)(hidden), bias, padding_mask, deterministic)
        hidden = hidden + drop_path(self, self._scale(out, 1), rate, deterministic)  # [B, T, D]
        out = self.mlp(layer_norm(eps, self.dtype, second)(hidden), deterministic)
        hidden = hidden + drop_path(self, self._scale(out, 2), rate, deterministic)
        return hidden, weights if output_attentions else None, None


class EncoderBlock(PreNormBlock):
    """A pre-norm block with transformers' encoder-layer names: `attention.attention.{query,key,value}`,
    `attention.output.dense`, `intermediate.dense` and `output.dense` (ViT, BEiT; DINOv2's attention).

    `config.qkv_bias` (default True) and `key_bias` choose the projection biases; `window()` adds a
    per-block relative position bias.
    """

    key_bias: ClassVar[bool] = True

    @classmethod
    def kernel_init(cls, config: Any) -> Callable:
        return truncated_normal(config.initializer_range)

    def window(self) -> tuple[int, int] | None:
        return None

    def attention(self, hidden, bias, padding_mask, deterministic):
        cfg = self.config
        return AttentionWithOutput(
            cfg.num_attention_heads, self.kernel_init(cfg), key_bias=self.key_bias, qkv_bias=getattr(cfg, "qkv_bias", True),
            dropout_rate=cfg.attention_probs_dropout_prob, hidden_dropout_rate=cfg.hidden_dropout_prob,
            window=self.window(), dtype=self.dtype, name="attention",
        )(hidden, bias, deterministic)

    def mlp(self, hidden, deterministic):
        cfg = self.config
        init = self.kernel_init(cfg)
        hidden = activation(cfg.hidden_act)(DenseModule(cfg.intermediate_size, init, self.dtype, name="intermediate")(hidden))
        hidden = DenseModule(cfg.hidden_size, init, self.dtype, name="output")(hidden)
        return nn.Dropout(cfg.hidden_dropout_prob)(hidden, deterministic=deterministic)


class LayerScale(nn.Module):
    """DINOv2's `layer_scale{1,2}` module: one per-channel scale called `lambda1`."""

    init: Callable

    @nn.compact
    def __call__(self, features: int) -> jax.Array:
        return self.param("lambda1", self.init, (features,))


class Encoder(nn.Module):
    """The stack of blocks as transformers' `encoder`: `hidden_states` are each block's input and the
    last block's output. `shared_window` adds one `relative_position_bias` that every block adds (BEiT)."""

    block_cls: type[PreNormBlock]
    config: Any
    stack_name: str = "layer"
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    shared_window: tuple[int, int] | None = None

    @nn.compact
    def __call__(self, hidden, bias=None, padding_mask=None, deterministic=True, output_attentions=False,
                 output_hidden_states=False) -> tuple[jax.Array, tuple | None, tuple | None]:
        if self.shared_window is not None:
            bias = RelativePositionBias(self.shared_window, self.config.num_attention_heads,
                                        name="relative_position_bias")()
        stack = LayerStack(self.block_cls, self.config.num_hidden_layers, {"config": self.config, "dtype": self.dtype},
                           gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                           name=self.stack_name)
        hidden, all_hidden, attentions, _ = stack(hidden, (bias, padding_mask), deterministic, False,
                                                  output_attentions, output_hidden_states)
        if output_hidden_states:
            all_hidden = all_hidden + (hidden,)
        return hidden, all_hidden, attentions


__all__ = [
    "AttentionWithOutput", "DenseModule", "Encoder", "EncoderBlock", "FeedForward", "LayerScale", "PatchEmbeddings", "PreNormBlock",
    "RelativePositionBias", "SelfAttention", "bicubic_matrix", "check_channels", "drop_path", "patch_conv",
    "relative_position_index", "resize_grid_bicubic", "truncated_normal",
]

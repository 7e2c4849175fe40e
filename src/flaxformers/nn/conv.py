"""Convolutional-network pieces shared by ResNet and RegNet, with transformers 4.x Flax's names.

A network is an `embedder`, an `encoder` of `stages.{i}.layers.{j}` residual layers, global average
pooling and a `classifier.1` dense layer. Batch norm keeps its statistics in the `batch_stats`
collection and follows PyTorch's `BatchNorm2d`: momentum 0.1, and the running variance updated with the
unbiased batch variance. Activations are channels last; hidden states are returned as [B, C, H, W].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.nn.layers import activation as activation_fn
from flaxformers.outputs import (
    FlaxBaseModelOutputWithPoolingAndNoAttention,
    FlaxImageClassifierOutputWithNoAttention,
)


class BatchNorm(nn.Module):
    """PyTorch's BatchNorm2d over channels-last inputs: params `scale`/`bias`, statistics `mean`/`var`."""

    momentum: float = 0.1
    epsilon: float = 1e-5
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, use_running_average: bool = True) -> jax.Array:
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
        x32 = x.astype(jnp.float32)
        if use_running_average:
            mean, var = running_mean.value, running_var.value
        else:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x32, axis=axes)  # [C]
            var = jnp.mean(jnp.square(x32 - mean), axis=axes)  # normalises with the biased variance
            if not self.is_initializing():
                count = x.size // features
                running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
                running_var.value = (1 - self.momentum) * running_var.value + self.momentum * var * count / (count - 1)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
        return y.astype(self.dtype)


def conv_init() -> Callable:
    return nn.initializers.variance_scaling(2.0, mode="fan_out", distribution="truncated_normal")


class ConvLayer(nn.Module):
    """`convolution` (no bias, 'same'-style padding k // 2) -> `normalization` -> activation (None: none)."""

    out_channels: int
    kernel_size: int = 3
    stride: int = 1
    groups: int = 1
    activation: str | None = "relu"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
        k = self.kernel_size
        x = nn.Conv(self.out_channels, (k, k), strides=self.stride, padding=k // 2, feature_group_count=self.groups,
                    use_bias=False, dtype=self.dtype, kernel_init=conv_init(), name="convolution")(x)
        x = BatchNorm(dtype=self.dtype, name="normalization")(x, use_running_average=deterministic)
        return x if self.activation is None else activation_fn(self.activation)(x)


class Sequence(nn.Module):
    """transformers' `nn.Sequential`: children "0", "1", ... from `(module class, keyword arguments)` pairs,
    each called as `child(x, deterministic)`."""

    layers: tuple[tuple[type[nn.Module], dict[str, Any]], ...]
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
        for i, (cls, kwargs) in enumerate(self.layers):
            x = cls(**kwargs, dtype=self.dtype, name=str(i))(x, deterministic)
        return x


def residual(module: nn.Module, x: jax.Array, layers: tuple, in_channels: int, out_channels: int, stride: int,
             act: str, deterministic: bool) -> jax.Array:
    """`act(layer(x) + shortcut(x))`: the shortcut is a strided 1x1 `ConvLayer` when the shape changes."""
    out = Sequence(layers, module.dtype, name="layer")(x, deterministic)
    if in_channels != out_channels or stride != 1:
        x = ConvLayer(out_channels, 1, stride, activation=None, dtype=module.dtype, name="shortcut")(x, deterministic)
    return activation_fn(act)(out + x)


class _Layers(nn.Module):
    layer_cls: type[nn.Module]
    config: Any
    in_channels: int
    out_channels: int
    stride: int
    depth: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        for j in range(self.depth):
            first = j == 0
            x = self.layer_cls(self.config, self.in_channels if first else self.out_channels, self.out_channels,
                               self.stride if first else 1, dtype=self.dtype, name=str(j))(x, deterministic)
        return x


class _Stage(nn.Module):
    layer_cls: type[nn.Module]
    config: Any
    in_channels: int
    out_channels: int
    stride: int
    depth: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        return _Layers(self.layer_cls, self.config, self.in_channels, self.out_channels, self.stride, self.depth,
                       self.dtype, name="layers")(x, deterministic)


class _Stages(nn.Module):
    layer_cls: type[nn.Module]
    config: Any
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool, output_hidden_states: bool) -> tuple[jax.Array, tuple]:
        cfg = self.config
        widths = [cfg.embedding_size, *cfg.hidden_sizes]
        hidden_states = ()
        for i, depth in enumerate(cfg.depths):
            hidden_states += (jnp.transpose(x, (0, 3, 1, 2)),)  # [B, C, H, W]
            stride = 2 if i > 0 or cfg.downsample_in_first_stage else 1
            x = _Stage(self.layer_cls, cfg, widths[i], widths[i + 1], stride, depth, self.dtype, name=str(i))(
                x, deterministic)
        hidden_states += (jnp.transpose(x, (0, 3, 1, 2)),)
        return x, hidden_states if output_hidden_states else None


class ConvEncoder(nn.Module):
    """`stages.{i}.layers.{j}`: stage i maps hidden_sizes[i - 1] (embedding_size first) channels to
    hidden_sizes[i] over depths[i] layers, its first layer with stride 2 (stage 0: only when
    `downsample_in_first_stage`). A layer is `layer_cls(config, in_channels, out_channels, stride)`."""

    layer_cls: type[nn.Module]
    config: Any
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True, output_hidden_states: bool = False):
        return _Stages(self.layer_cls, self.config, self.dtype, name="stages")(x, deterministic, output_hidden_states)


class ConvNetModule(nn.Module):
    """`embedder` -> `encoder` -> global average pooling: transformers' ResNet/RegNet base model.

    Subclasses set `embeddings_cls` (called as `(pixel_values, deterministic)`) and `layer_cls`.
    """

    config: Any
    dtype: jnp.dtype = jnp.float32
    embeddings_cls: ClassVar[type[nn.Module]]
    layer_cls: ClassVar[type[nn.Module]]

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True, output_hidden_states: bool = False,
                 return_dict: bool = True):
        x = self.embeddings_cls(self.config, self.dtype, name="embedder")(pixel_values, deterministic)
        x, hidden_states = ConvEncoder(self.layer_cls, self.config, self.dtype, name="encoder")(
            x, deterministic, output_hidden_states)
        pooled = jnp.mean(x, axis=(1, 2), keepdims=True).transpose(0, 3, 1, 2)  # [B, C, 1, 1]
        last = x.transpose(0, 3, 1, 2)  # [B, C, H, W]
        if not return_dict:
            return tuple(v for v in (last, pooled, hidden_states) if v is not None)
        return FlaxBaseModelOutputWithPoolingAndNoAttention(last_hidden_state=last, pooler_output=pooled,
                                                            hidden_states=hidden_states)


class ConvNetClassifierModule(nn.Module):
    """The base model under `base_model_prefix`, then transformers' `classifier` Sequential (flatten,
    linear): the dense layer is `classifier.1` (none with `num_labels=0`)."""

    config: Any
    dtype: jnp.dtype = jnp.float32
    backbone_cls: ClassVar[type[ConvNetModule]]
    base_model_prefix: ClassVar[str]

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True, output_hidden_states: bool = False,
                 return_dict: bool = True):
        outputs = self.backbone_cls(self.config, self.dtype, name=self.base_model_prefix)(
            pixel_values, deterministic, output_hidden_states, return_dict)
        logits = outputs[1][:, :, 0, 0]  # [B, C]
        if self.config.num_labels > 0:
            logits = _Classifier(self.config.num_labels, self.dtype, name="classifier")(logits)
        if not return_dict:
            return (logits,) + tuple(outputs[2:])
        return FlaxImageClassifierOutputWithNoAttention(logits=logits, hidden_states=outputs.hidden_states)


class _Classifier(nn.Module):
    num_labels: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pooled: jax.Array) -> jax.Array:
        return nn.Dense(self.num_labels, dtype=self.dtype, name="1")(pooled)


__all__ = ["BatchNorm", "ConvEncoder", "ConvLayer", "ConvNetClassifierModule", "ConvNetModule", "Sequence", "conv_init",
           "residual"]

"""RegNet in Flax: the base model and the image classifier, with transformers 4.x Flax's param names.

What is RegNet's own: a 3x3 stride-2 stem, and X layers (1x1, grouped 3x3 with `groups_width` channels a
group, 1x1) or Y layers (X with squeeze-and-excitation before the last 1x1). The shared pieces (batch
norm in `batch_stats`, stages, pooling, classifier) are `nn.conv`'s.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from flaxformers.modeling_vision import FlaxBatchNormPixelModel
from flaxformers.models.regnet.configuration import RegNetConfig
from flaxformers.nn.conv import (
    ConvLayer,
    ConvNetClassifierModule,
    ConvNetModule,
    conv_init,
    residual,
)
from flaxformers.nn.vision import check_channels


class FlaxRegNetEmbeddings(nn.Module):
    config: RegNetConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True):
        cfg = self.config
        check_channels(pixel_values, cfg.num_channels)
        return ConvLayer(cfg.embedding_size, 3, 2, activation=cfg.hidden_act, dtype=self.dtype, name="embedder")(
            pixel_values, deterministic)


class FlaxRegNetSELayer(nn.Module):
    """Squeeze-and-excitation: channel weights from the pooled map, `attention.0` and `attention.2`."""

    in_channels: int
    reduced_channels: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        pooled = jnp.mean(x, axis=(1, 2), keepdims=True)  # [B, 1, 1, C]
        return x * _SqueezeExcite(self.in_channels, self.reduced_channels, self.dtype, name="attention")(pooled)


class _SqueezeExcite(nn.Module):
    in_channels: int
    reduced_channels: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pooled):
        conv = lambda features, name: nn.Conv(features, (1, 1), dtype=self.dtype, kernel_init=conv_init(), name=name)  # noqa: E731
        return nn.sigmoid(conv(self.in_channels, "2")(nn.relu(conv(self.reduced_channels, "0")(pooled))))


class FlaxRegNetLayer(nn.Module):
    """An X or Y residual layer, by `config.layer_type`."""

    config: RegNetConfig
    in_channels: int
    out_channels: int
    stride: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        cfg, out = self.config, self.out_channels
        groups = max(1, out // cfg.groups_width)
        layers = [
            (ConvLayer, dict(out_channels=out, kernel_size=1, activation=cfg.hidden_act)),
            (ConvLayer, dict(out_channels=out, stride=self.stride, groups=groups, activation=cfg.hidden_act)),
            (ConvLayer, dict(out_channels=out, kernel_size=1, activation=None)),
        ]
        if cfg.layer_type == "y":
            layers.insert(2, (FlaxRegNetSELayer, dict(in_channels=out, reduced_channels=int(round(self.in_channels / 4)))))
        return residual(self, x, tuple(layers), self.in_channels, out, self.stride, cfg.hidden_act, deterministic)


class FlaxRegNetModule(ConvNetModule):
    embeddings_cls = FlaxRegNetEmbeddings
    layer_cls = FlaxRegNetLayer


class FlaxRegNetForImageClassificationModule(ConvNetClassifierModule):
    backbone_cls = FlaxRegNetModule
    base_model_prefix = "regnet"


class FlaxRegNetPreTrainedModel(FlaxBatchNormPixelModel):
    config_class = RegNetConfig
    base_model_prefix = "regnet"


class FlaxRegNetModel(FlaxRegNetPreTrainedModel):
    module_class = FlaxRegNetModule


class FlaxRegNetForImageClassification(FlaxRegNetPreTrainedModel):
    module_class = FlaxRegNetForImageClassificationModule


__all__ = ["FlaxRegNetForImageClassification", "FlaxRegNetModel", "FlaxRegNetPreTrainedModel"]

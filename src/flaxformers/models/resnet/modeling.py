"""ResNet in Flax: the base model and the image classifier, with transformers 4.x Flax's param names.

What is ResNet's own: a 7x7 stride-2 stem with 3x3 max pooling, and basic (two 3x3 convolutions) or
bottleneck (1x1, 3x3, 1x1 with a 4x channel reduction) residual layers. The shared pieces (batch norm
in `batch_stats`, stages, pooling, classifier) are `nn.conv`'s.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from flaxformers.modeling_vision import FlaxBatchNormPixelModel
from flaxformers.models.resnet.configuration import ResNetConfig
from flaxformers.nn.conv import ConvLayer, ConvNetClassifierModule, ConvNetModule, residual
from flaxformers.nn.vision import check_channels


class FlaxResNetEmbeddings(nn.Module):
    config: ResNetConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True):
        cfg = self.config
        check_channels(pixel_values, cfg.num_channels)
        x = ConvLayer(cfg.embedding_size, 7, 2, activation=cfg.hidden_act, dtype=self.dtype, name="embedder")(
            pixel_values, deterministic)
        return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class FlaxResNetLayer(nn.Module):
    """A basic or bottleneck residual layer, by `config.layer_type`."""

    config: ResNetConfig
    in_channels: int
    out_channels: int
    stride: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        cfg, out, stride = self.config, self.out_channels, self.stride
        if cfg.layer_type == "basic":
            layers = ((ConvLayer, dict(out_channels=out, stride=stride)), (ConvLayer, dict(out_channels=out, activation=None)))
        else:
            reduced, first = out // 4, stride if cfg.downsample_in_bottleneck else 1
            layers = (
                (ConvLayer, dict(out_channels=reduced, kernel_size=1, stride=first)),
                (ConvLayer, dict(out_channels=reduced, stride=stride // first)),
                (ConvLayer, dict(out_channels=out, kernel_size=1, activation=None)),
            )
        return residual(self, x, layers, self.in_channels, out, stride, cfg.hidden_act, deterministic)


class FlaxResNetModule(ConvNetModule):
    embeddings_cls = FlaxResNetEmbeddings
    layer_cls = FlaxResNetLayer


class FlaxResNetForImageClassificationModule(ConvNetClassifierModule):
    backbone_cls = FlaxResNetModule
    base_model_prefix = "resnet"


class FlaxResNetPreTrainedModel(FlaxBatchNormPixelModel):
    config_class = ResNetConfig
    base_model_prefix = "resnet"


class FlaxResNetModel(FlaxResNetPreTrainedModel):
    module_class = FlaxResNetModule


class FlaxResNetForImageClassification(FlaxResNetPreTrainedModel):
    module_class = FlaxResNetForImageClassificationModule


__all__ = ["FlaxResNetForImageClassification", "FlaxResNetModel", "FlaxResNetPreTrainedModel"]

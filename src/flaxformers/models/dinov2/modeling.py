"""DINOv2 in Flax: the base model and the image classifier, with transformers 4.x Flax's param names.

What is DINOv2's own: position embeddings resized (bicubic, as PyTorch resizes them) to any image
size, blocks with `norm1` / `norm2`, layer scale (`layer_scale{1,2}.lambda1`), an `fc1`/`fc2` or SwiGLU
MLP, and a classifier over the [CLS] state joined with the mean patch state.

transformers 4.x Flax multiplied `lambda1` by `layerscale_value` a second time; the checkpoint's
`lambda1` already holds it, so it is used as it is (as PyTorch does).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from flaxformers.modeling_vision import FlaxPixelModel
from flaxformers.models.dinov2.configuration import Dinov2Config
from flaxformers.nn.layers import layer_norm
from flaxformers.nn.vision import (
    Encoder,
    EncoderBlock,
    FeedForward,
    PatchEmbeddings,
    resize_grid_bicubic,
    truncated_normal,
)
from flaxformers.outputs import FlaxBaseModelOutputWithPooling, FlaxSequenceClassifierOutput


class FlaxDinov2Embeddings(nn.Module):
    config: Dinov2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True):
        cfg = self.config
        init = truncated_normal(cfg.initializer_range)
        patches = PatchEmbeddings(cfg.hidden_size, cfg.patch_size, cfg.num_channels, init, self.dtype,
                                  name="patch_embeddings")(pixel_values)  # [B, h * w, D]
        b, n, d = patches.shape
        cls_token = self.param("cls_token", init, (1, 1, d))
        if cfg.use_mask_token:
            self.param("mask_token", init, (1, d))
        grid = cfg.image_size // cfg.patch_size
        positions = self.param("position_embeddings", init, (1, grid * grid + 1, d))
        height, width = pixel_values.shape[1] // cfg.patch_size, pixel_values.shape[2] // cfg.patch_size
        if n != grid * grid or height != width:  # another image size: resize the patch positions
            patch_positions = resize_grid_bicubic(positions[:, 1:].reshape(1, grid, grid, d), height, width)
            positions = jnp.concatenate([positions[:, :1], patch_positions.reshape(1, n, d)], axis=1)
        hidden = jnp.concatenate([jnp.broadcast_to(cls_token, (b, 1, d)).astype(patches.dtype), patches], axis=1)
        hidden = hidden + positions.astype(hidden.dtype)  # [B, N + 1, D]
        return nn.Dropout(cfg.hidden_dropout_prob)(hidden, deterministic=deterministic)


class FlaxDinov2SwiGLUFFN(nn.Module):
    """`weights_in` gives gate and value halves; `weights_out` projects silu(gate) * value back."""

    config: Dinov2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        features = (int(int(cfg.hidden_size * cfg.mlp_ratio) * 2 / 3) + 7) // 8 * 8
        init = truncated_normal(cfg.initializer_range)
        gate, value = jnp.split(nn.Dense(2 * features, dtype=self.dtype, kernel_init=init, name="weights_in")(hidden),
                                2, axis=-1)
        return nn.Dense(cfg.hidden_size, dtype=self.dtype, kernel_init=init, name="weights_out")(nn.silu(gate) * value)


class FlaxDinov2Layer(EncoderBlock):
    norm_names = ("norm1", "norm2")

    @classmethod
    def drop_path_rate(cls, config, layer_idx):
        return config.drop_path_rate

    @classmethod
    def layer_scale(cls, config):
        return ("modules", config.layerscale_value)

    def mlp(self, hidden, deterministic):
        cfg = self.config
        if cfg.use_swiglu_ffn:
            return FlaxDinov2SwiGLUFFN(cfg, self.dtype, name="mlp")(hidden)
        return FeedForward(int(cfg.hidden_size * cfg.mlp_ratio), cfg.hidden_act, truncated_normal(cfg.initializer_range),
                           self.dtype, name="mlp")(hidden)


class FlaxDinov2Module(nn.Module):
    config: Dinov2Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        hidden = FlaxDinov2Embeddings(cfg, self.dtype, name="embeddings")(pixel_values, deterministic)
        hidden, all_hidden, attentions = Encoder(FlaxDinov2Layer, cfg, "layer", self.dtype, self.gradient_checkpointing,
                                                 self.remat_policy, name="encoder")(
            hidden, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "layernorm")(hidden)
        pooled = hidden[:, 0]  # [B, D]
        if not return_dict:
            return tuple(v for v in (hidden, pooled, all_hidden, attentions) if v is not None)
        return FlaxBaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden,
                                              attentions=attentions)


class FlaxDinov2ForImageClassificationModule(nn.Module):
    config: Dinov2Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        outputs = FlaxDinov2Module(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy, name="dinov2")(
            pixel_values, deterministic, output_attentions, output_hidden_states, return_dict)
        hidden = outputs[0]
        features = jnp.concatenate([hidden[:, 0], jnp.mean(hidden[:, 1:], axis=1)], axis=-1)  # [B, 2D]
        logits = nn.Dense(cfg.num_labels, dtype=self.dtype, kernel_init=truncated_normal(cfg.initializer_range),
                          name="classifier")(features)
        if not return_dict:
            return (logits,) + tuple(outputs[2:])
        return FlaxSequenceClassifierOutput(logits=logits, hidden_states=outputs.hidden_states,
                                            attentions=outputs.attentions)


class FlaxDinov2PreTrainedModel(FlaxPixelModel):
    config_class = Dinov2Config
    base_model_prefix = "dinov2"


class FlaxDinov2Model(FlaxDinov2PreTrainedModel):
    module_class = FlaxDinov2Module


class FlaxDinov2ForImageClassification(FlaxDinov2PreTrainedModel):
    module_class = FlaxDinov2ForImageClassificationModule


__all__ = ["FlaxDinov2ForImageClassification", "FlaxDinov2Model", "FlaxDinov2PreTrainedModel"]

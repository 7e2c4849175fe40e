"""BEiT in Flax: the base model, masked image modeling and the image classifier, with transformers 4.x
Flax's param names.

What is BEiT's own: a [CLS] token and an optional mask token, absolute position embeddings only when
asked, 2-D relative position bias per block or shared by all (`encoder.relative_position_bias`), layer
scale (`lambda_1`, `lambda_2`), stochastic depth rising linearly with depth, and a pooler that is the
mean patch state under a LayerNorm (or the [CLS] state after the final `layernorm`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.modeling_vision import FlaxPixelModel
from flaxformers.models.beit.configuration import BeitConfig
from flaxformers.nn.layers import layer_norm
from flaxformers.nn.vision import Encoder, EncoderBlock, PatchEmbeddings
from flaxformers.outputs import (
    FlaxBaseModelOutputWithPooling,
    FlaxMaskedLMOutput,
    FlaxSequenceClassifierOutput,
    output_class,
)

FlaxBeitModelOutputWithPooling = output_class(
    "FlaxBeitModelOutputWithPooling", *FlaxBaseModelOutputWithPooling.__dataclass_fields__
)


def _init(cfg: BeitConfig):
    return nn.initializers.normal(cfg.initializer_range)


class FlaxBeitEmbeddings(nn.Module):
    config: BeitConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pixel_values, bool_masked_pos=None, deterministic: bool = True):
        cfg = self.config
        patches = PatchEmbeddings(cfg.hidden_size, cfg.patch_size, cfg.num_channels, _init(cfg), self.dtype,
                                  name="patch_embeddings")(pixel_values)  # [B, N, D]
        b, n, d = patches.shape
        cls_token = self.param("cls_token", nn.initializers.zeros, (1, 1, d))
        if cfg.use_mask_token:
            mask_token = self.param("mask_token", nn.initializers.zeros, (1, 1, d))
        if bool_masked_pos is not None:  # masked patches are replaced by the mask token
            w = jnp.asarray(bool_masked_pos, patches.dtype)[..., None]  # [B, N, 1]
            patches = patches * (1 - w) + mask_token.astype(patches.dtype) * w
        hidden = jnp.concatenate([jnp.broadcast_to(cls_token, (b, 1, d)).astype(patches.dtype), patches], axis=1)
        if cfg.use_absolute_position_embeddings:
            hidden = hidden + self.param("position_embeddings", nn.initializers.zeros, (1, n + 1, d)).astype(hidden.dtype)
        return nn.Dropout(cfg.hidden_dropout_prob)(hidden, deterministic=deterministic)  # [B, N + 1, D]


class FlaxBeitLayer(EncoderBlock):
    """ViT's block with no key bias, an optional relative position bias, layer scale and stochastic depth."""

    key_bias = False

    @classmethod
    def kernel_init(cls, config):
        return _init(config)

    def window(self):
        return self.config.window_size if self.config.use_relative_position_bias else None

    @classmethod
    def drop_path_rate(cls, config, layer_idx):
        return float(np.linspace(0, config.drop_path_rate, config.num_hidden_layers)[layer_idx])

    @classmethod
    def layer_scale(cls, config):
        return ("params", config.layer_scale_init_value) if config.layer_scale_init_value > 0 else None


class FlaxBeitPooler(nn.Module):
    config: BeitConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        if cfg.use_mean_pooling:  # mean of the patch states ([CLS] left out)
            return layer_norm(cfg.layer_norm_eps, self.dtype, "layernorm")(jnp.mean(hidden[:, 1:], axis=1))
        return hidden[:, 0]


class FlaxBeitModule(nn.Module):
    config: BeitConfig
    dtype: jnp.dtype = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, pixel_values, bool_masked_pos=None, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        hidden = FlaxBeitEmbeddings(cfg, self.dtype, name="embeddings")(pixel_values, bool_masked_pos, deterministic)
        shared = cfg.window_size if cfg.use_shared_relative_position_bias else None
        hidden, all_hidden, attentions = Encoder(FlaxBeitLayer, cfg, "layer", self.dtype, self.gradient_checkpointing,
                                                 self.remat_policy, shared, name="encoder")(
            hidden, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        if not cfg.use_mean_pooling:
            hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "layernorm")(hidden)
        pooled = FlaxBeitPooler(cfg, self.dtype, name="pooler")(hidden) if self.add_pooling_layer else None
        if not return_dict:
            return tuple(v for v in (hidden, pooled, all_hidden, attentions) if v is not None)
        return FlaxBeitModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden,
                                              attentions=attentions)


class _HeadModule(nn.Module):
    config: BeitConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    pooling = True

    def beit(self, pixel_values, bool_masked_pos, deterministic, output_attentions, output_hidden_states, return_dict):
        return FlaxBeitModule(self.config, self.dtype, self.pooling, self.gradient_checkpointing, self.remat_policy,
                              name="beit")(pixel_values, bool_masked_pos, deterministic, output_attentions,
                                           output_hidden_states, return_dict)


class FlaxBeitForMaskedImageModelingModule(_HeadModule):
    """Visual-token logits [B, N, vocab_size] for every patch ([CLS] left out)."""

    pooling = False

    @nn.compact
    def __call__(self, pixel_values, bool_masked_pos=None, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        outputs = self.beit(pixel_values, bool_masked_pos, deterministic, output_attentions, output_hidden_states,
                            return_dict)
        hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "layernorm")(outputs[0])
        logits = nn.Dense(cfg.vocab_size, dtype=self.dtype, kernel_init=_init(cfg), name="lm_head")(hidden[:, 1:])
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxMaskedLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBeitForImageClassificationModule(_HeadModule):
    @nn.compact
    def __call__(self, pixel_values, bool_masked_pos=None, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        outputs = self.beit(pixel_values, None, deterministic, output_attentions, output_hidden_states, return_dict)
        logits = nn.Dense(cfg.num_labels, dtype=self.dtype, kernel_init=_init(cfg), name="classifier")(outputs[1])
        if not return_dict:
            return (logits,) + tuple(outputs[2:])
        return FlaxSequenceClassifierOutput(logits=logits, hidden_states=outputs.hidden_states,
                                            attentions=outputs.attentions)


class FlaxBeitPreTrainedModel(FlaxPixelModel):
    config_class = BeitConfig
    base_model_prefix = "beit"

    def __call__(
        self,
        pixel_values: Any,
        bool_masked_pos: Any = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        inputs = {"pixel_values": self._pixel_values(pixel_values)}
        if bool_masked_pos is not None:
            if not self.config.use_mask_token:
                raise ValueError("bool_masked_pos needs a mask token: set config.use_mask_token=True.")
            inputs["bool_masked_pos"] = jnp.asarray(bool_masked_pos)
        return self._apply(inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=return_dict)


class FlaxBeitModel(FlaxBeitPreTrainedModel):
    module_class = FlaxBeitModule


class FlaxBeitForMaskedImageModeling(FlaxBeitPreTrainedModel):
    module_class = FlaxBeitForMaskedImageModelingModule
    _keys_to_ignore_on_load_unexpected = (r"pooler",)


class FlaxBeitForImageClassification(FlaxBeitPreTrainedModel):
    module_class = FlaxBeitForImageClassificationModule


__all__ = [
    "FlaxBeitForImageClassification", "FlaxBeitForMaskedImageModeling", "FlaxBeitModel",
    "FlaxBeitModelOutputWithPooling", "FlaxBeitPreTrainedModel",
]

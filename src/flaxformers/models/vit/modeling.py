"""ViT in Flax: the base model and the image classifier, with transformers 4.x Flax's param names.

What is ViT's own: a learned [CLS] token and absolute position embeddings over the patches, pre-norm
blocks (`layernorm_before` / `layernorm_after`, `intermediate` / `output`), a final `layernorm`, and a
dense + tanh pooler over [CLS]. The classifier reads the [CLS] state without the pooler.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from flaxformers.modeling_vision import FlaxPixelModel
from flaxformers.models.vit.configuration import ViTConfig
from flaxformers.nn.layers import activation, layer_norm
from flaxformers.nn.vision import Encoder, EncoderBlock, PatchEmbeddings, truncated_normal
from flaxformers.outputs import FlaxBaseModelOutputWithPooling, FlaxSequenceClassifierOutput


class FlaxViTEmbeddings(nn.Module):
    config: ViTConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True):
        cfg = self.config
        init = truncated_normal(cfg.initializer_range)
        patches = PatchEmbeddings(cfg.hidden_size, cfg.patch_size, cfg.num_channels, init, self.dtype,
                                  name="patch_embeddings")(pixel_values)  # [B, N, D]
        cls_token = self.param("cls_token", init, (1, 1, cfg.hidden_size))
        positions = self.param("position_embeddings", init, (1, patches.shape[1] + 1, cfg.hidden_size))
        cls_tokens = jnp.broadcast_to(cls_token, (patches.shape[0], 1, cfg.hidden_size)).astype(patches.dtype)
        hidden = jnp.concatenate([cls_tokens, patches], axis=1) + positions.astype(patches.dtype)  # [B, N + 1, D]
        return nn.Dropout(cfg.hidden_dropout_prob)(hidden, deterministic=deterministic)


class FlaxViTLayer(EncoderBlock):
    """ViT's pre-norm block: `attention`, then `intermediate` and `output` dense layers."""


class FlaxViTPooler(nn.Module):
    config: ViTConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        dense = nn.Dense(cfg.pooler_output_size, dtype=self.dtype, kernel_init=truncated_normal(cfg.initializer_range),
                         name="dense")
        return activation(cfg.pooler_act)(dense(hidden[:, 0]))  # [B, P]


class FlaxViTModule(nn.Module):
    config: ViTConfig
    dtype: jnp.dtype = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        hidden = FlaxViTEmbeddings(cfg, self.dtype, name="embeddings")(pixel_values, deterministic)
        hidden, all_hidden, attentions = Encoder(FlaxViTLayer, cfg, "layer", self.dtype, self.gradient_checkpointing,
                                                 self.remat_policy, name="encoder")(
            hidden, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "layernorm")(hidden)
        pooled = FlaxViTPooler(cfg, self.dtype, name="pooler")(hidden) if self.add_pooling_layer else None
        if not return_dict:
            return tuple(v for v in (hidden, pooled, all_hidden, attentions) if v is not None)
        return FlaxBaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden,
                                              attentions=attentions)


class FlaxViTForImageClassificationModule(nn.Module):
    config: ViTConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        outputs = FlaxViTModule(cfg, self.dtype, add_pooling_layer=False, gradient_checkpointing=self.gradient_checkpointing,
                                remat_policy=self.remat_policy, name="vit")(
            pixel_values, deterministic, output_attentions, output_hidden_states, return_dict)
        logits = nn.Dense(cfg.num_labels, dtype=self.dtype, kernel_init=truncated_normal(cfg.initializer_range),
                          name="classifier")(outputs[0][:, 0])  # [B, num_labels]
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxSequenceClassifierOutput(logits=logits, hidden_states=outputs.hidden_states,
                                            attentions=outputs.attentions)


class FlaxViTPreTrainedModel(FlaxPixelModel):
    config_class = ViTConfig
    base_model_prefix = "vit"


class FlaxViTModel(FlaxViTPreTrainedModel):
    module_class = FlaxViTModule


class FlaxViTForImageClassification(FlaxViTPreTrainedModel):
    module_class = FlaxViTForImageClassificationModule
    _keys_to_ignore_on_load_unexpected = (r"pooler",)


__all__ = ["FlaxViTForImageClassification", "FlaxViTModel", "FlaxViTPreTrainedModel"]

"""CLIP in Flax: the text and vision towers, their projections and the joint model, with transformers 4.x
Flax's param names (`text_model`, `vision_model`, `text_projection`, `visual_projection`, `logit_scale`).

What is CLIP's own: pre-norm blocks named `self_attn.{q,k,v,out}_proj`, `layer_norm{1,2}`, `mlp.fc{1,2}`;
a causal text tower pooled at the first end-of-text token (at the largest id for legacy configs with
`eos_token_id == 2`); a vision tower with a class embedding, a `pre_layrnorm` and a post-norm on the
pooled [CLS] state; cosine-similarity logits scaled by `exp(logit_scale)` and the symmetric
contrastive loss.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.modeling_vision import FlaxPixelModel
from flaxformers.models.clip.configuration import CLIPConfig, CLIPTextConfig, CLIPVisionConfig
from flaxformers.nn.layers import layer_norm
from flaxformers.nn.vision import (
    Encoder,
    FeedForward,
    PreNormBlock,
    SelfAttention,
    check_channels,
    patch_conv,
)
from flaxformers.outputs import FlaxBaseModelOutputWithPooling, ModelOutput, output_class
from flaxformers.training.losses import cross_entropy_terms

FlaxCLIPTextModelOutput = output_class(
    "FlaxCLIPTextModelOutput", "text_embeds", "last_hidden_state", "hidden_states", "attentions")
FlaxCLIPVisionModelOutput = output_class(
    "FlaxCLIPVisionModelOutput", "image_embeds", "last_hidden_state", "hidden_states", "attentions")


class FlaxCLIPOutput(output_class("_CLIPOutput", "loss", "logits_per_image", "logits_per_text", "text_embeds",
                                  "image_embeds", "text_model_output", "vision_model_output")):
    """The joint model's output; `to_tuple()` flattens the towers' outputs to tuples too, as 4.x did."""

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in super().to_tuple())


def contrastive_loss(logits: jax.Array) -> jax.Array:
    """Cross-entropy of each row against the matching column (row i matches column i)."""
    total, count = cross_entropy_terms(logits, jnp.arange(logits.shape[0]))
    return total / count


def clip_loss(logits_per_text: jax.Array) -> jax.Array:
    """CLIP's symmetric loss: the mean of the caption->image and image->caption cross-entropies."""
    return (contrastive_loss(logits_per_text) + contrastive_loss(logits_per_text.T)) / 2.0


def _normal(std: float = 0.01):
    return nn.initializers.normal(std)


# --- the towers --------------------------------------------------------------------------------------
class FlaxCLIPEncoderLayer(PreNormBlock):
    """CLIP's block; the text tower's self-attention is causal."""

    norm_names = ("layer_norm1", "layer_norm2")

    def attention(self, hidden, bias, padding_mask, deterministic):
        cfg = self.config
        return SelfAttention(cfg.num_attention_heads, _normal(), names=("q_proj", "k_proj", "v_proj"),
                             output_name="out_proj", causal=isinstance(cfg, CLIPTextConfig),
                             dropout_rate=cfg.attention_dropout, dtype=self.dtype, name="self_attn")(
            hidden, bias, padding_mask, deterministic)

    def mlp(self, hidden, deterministic):
        cfg = self.config
        return FeedForward(cfg.intermediate_size, cfg.hidden_act, _normal(), self.dtype, name="mlp")(hidden)


class FlaxCLIPTextEmbeddings(nn.Module):
    config: CLIPTextConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, input_ids, position_ids):
        cfg = self.config
        embed = lambda n, name: nn.Embed(n, cfg.hidden_size, embedding_init=_normal(), dtype=self.dtype, name=name)  # noqa: E731
        return embed(cfg.vocab_size, "token_embedding")(input_ids) + embed(cfg.max_position_embeddings,
                                                                           "position_embedding")(position_ids)


class FlaxCLIPTextTransformer(nn.Module):
    config: CLIPTextConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, input_ids, attention_mask, position_ids, deterministic: bool = True,
                 output_attentions: bool = False, output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        hidden = FlaxCLIPTextEmbeddings(cfg, self.dtype, name="embeddings")(input_ids, position_ids)  # [B, T, D]
        hidden, all_hidden, attentions = Encoder(FlaxCLIPEncoderLayer, cfg, "layers", self.dtype,
                                                 self.gradient_checkpointing, self.remat_policy, name="encoder")(
            hidden, None, attention_mask, deterministic, output_attentions, output_hidden_states)
        hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "final_layer_norm")(hidden)
        # legacy configs (eos_token_id 2) pool at the largest id, which was the end-of-text token
        end = input_ids.argmax(axis=-1) if cfg.eos_token_id == 2 else (input_ids == cfg.eos_token_id).argmax(axis=-1)
        pooled = hidden[jnp.arange(hidden.shape[0]), end]  # [B, D]
        if not return_dict:
            return tuple(v for v in (hidden, pooled, all_hidden, attentions) if v is not None)
        return FlaxBaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden,
                                              attentions=attentions)


class FlaxCLIPVisionEmbeddings(nn.Module):
    config: CLIPVisionConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pixel_values):
        cfg = self.config
        check_channels(pixel_values, cfg.num_channels)
        patches = patch_conv(cfg.hidden_size, cfg.patch_size, self.dtype, _normal(), use_bias=False,
                             name="patch_embedding")(pixel_values)
        patches = patches.reshape(patches.shape[0], -1, cfg.hidden_size)  # [B, N, D]
        class_embedding = self.param("class_embedding", _normal(0.02), (cfg.hidden_size,))
        classes = jnp.broadcast_to(class_embedding.astype(patches.dtype), (patches.shape[0], 1, cfg.hidden_size))
        hidden = jnp.concatenate([classes, patches], axis=1)
        positions = nn.Embed(hidden.shape[1], cfg.hidden_size, embedding_init=_normal(), dtype=self.dtype,
                             name="position_embedding")(jnp.arange(hidden.shape[1]))
        return hidden + positions[None]  # [B, N + 1, D]


class FlaxCLIPVisionTransformer(nn.Module):
    config: CLIPVisionConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        cfg = self.config
        hidden = FlaxCLIPVisionEmbeddings(cfg, self.dtype, name="embeddings")(pixel_values)
        hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "pre_layrnorm")(hidden)
        hidden, all_hidden, attentions = Encoder(FlaxCLIPEncoderLayer, cfg, "layers", self.dtype,
                                                 self.gradient_checkpointing, self.remat_policy, name="encoder")(
            hidden, None, None, deterministic, output_attentions, output_hidden_states)
        pooled = layer_norm(cfg.layer_norm_eps, self.dtype, "post_layernorm")(hidden[:, 0])  # [B, D]
        if not return_dict:
            return tuple(v for v in (hidden, pooled, all_hidden, attentions) if v is not None)
        return FlaxBaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden,
                                              attentions=attentions)


def _projection(features: int, dtype: jnp.dtype, name: str) -> nn.Dense:
    return nn.Dense(features, use_bias=False, dtype=dtype, kernel_init=_normal(0.02), name=name)


# --- modules of the model classes --------------------------------------------------------------------
class FlaxCLIPTextModule(nn.Module):
    config: CLIPTextConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    project: bool = False  # TextModelWithProjection: `text_embeds` from `text_projection`

    @nn.compact
    def __call__(self, input_ids, attention_mask, position_ids, deterministic: bool = True,
                 output_attentions: bool = False, output_hidden_states: bool = False, return_dict: bool = True):
        outputs = FlaxCLIPTextTransformer(self.config, self.dtype, self.gradient_checkpointing, self.remat_policy,
                                          name="text_model")(
            input_ids, attention_mask, position_ids, deterministic, output_attentions, output_hidden_states, return_dict)
        if not self.project:
            return outputs
        embeds = _projection(self.config.projection_dim, self.dtype, "text_projection")(outputs[1])
        if not return_dict:
            return (embeds, outputs[0]) + tuple(outputs[2:])
        return FlaxCLIPTextModelOutput(text_embeds=embeds, last_hidden_state=outputs.last_hidden_state,
                                       hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxCLIPTextModelWithProjectionModule(FlaxCLIPTextModule):
    project: bool = True


class FlaxCLIPVisionModule(nn.Module):
    config: CLIPVisionConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    project: bool = False  # VisionModelWithProjection: `image_embeds` from `visual_projection`

    @nn.compact
    def __call__(self, pixel_values, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        outputs = FlaxCLIPVisionTransformer(self.config, self.dtype, self.gradient_checkpointing, self.remat_policy,
                                            name="vision_model")(
            pixel_values, deterministic, output_attentions, output_hidden_states, return_dict)
        if not self.project:
            return outputs
        embeds = _projection(self.config.projection_dim, self.dtype, "visual_projection")(outputs[1])
        if not return_dict:
            return (embeds, outputs[0]) + tuple(outputs[2:])
        return FlaxCLIPVisionModelOutput(image_embeds=embeds, last_hidden_state=outputs.last_hidden_state,
                                         hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxCLIPVisionModelWithProjectionModule(FlaxCLIPVisionModule):
    project: bool = True


def _unit(x: jax.Array) -> jax.Array:
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


class FlaxCLIPModule(nn.Module):
    """Both towers, their projections and `logit_scale`; `text_features` / `image_features` project the
    pooled states (what `get_text_features` / `get_image_features` return)."""

    config: CLIPConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.text_model = FlaxCLIPTextTransformer(cfg.text_config, self.dtype, self.gradient_checkpointing,
                                                  self.remat_policy)
        self.vision_model = FlaxCLIPVisionTransformer(cfg.vision_config, self.dtype, self.gradient_checkpointing,
                                                      self.remat_policy)
        self.text_projection = _projection(cfg.projection_dim, self.dtype, None)
        self.visual_projection = _projection(cfg.projection_dim, self.dtype, None)
        self.logit_scale = self.param("logit_scale", lambda _, shape: jnp.full(shape, cfg.logit_scale_init_value), ())

    def text_features(self, input_ids, attention_mask, position_ids, deterministic: bool = True):
        return self.text_projection(self.text_model(input_ids, attention_mask, position_ids, deterministic)[1])

    def image_features(self, pixel_values, deterministic: bool = True):
        return self.visual_projection(self.vision_model(pixel_values, deterministic)[1])

    def __call__(self, input_ids, pixel_values, attention_mask, position_ids, deterministic: bool = True,
                 output_attentions: bool = False, output_hidden_states: bool = False, return_dict: bool = True,
                 return_loss: bool = False):
        return joint_outputs(self, self.text_model(input_ids, attention_mask, position_ids, deterministic,
                                                   output_attentions, output_hidden_states, return_dict),
                             self.vision_model(pixel_values, deterministic, output_attentions, output_hidden_states,
                                               return_dict),
                             return_dict, return_loss)


def joint_outputs(module: nn.Module, text_outputs: Any, vision_outputs: Any, return_dict: bool,
                  return_loss: bool) -> Any:
    """Projected, normalised embeddings of both towers and their scaled cosine similarities: the output
    of a model with `text_projection`, `visual_projection` and `logit_scale` (CLIP, dual encoders)."""
    text_embeds = _unit(module.text_projection(text_outputs[1]))  # [T, P]
    image_embeds = _unit(module.visual_projection(vision_outputs[1]))  # [I, P]
    logits_per_text = jnp.einsum("tp,ip->ti", text_embeds, image_embeds) * jnp.exp(module.logit_scale)
    loss = clip_loss(logits_per_text) if return_loss else None
    out = FlaxCLIPOutput(loss=loss, logits_per_image=logits_per_text.T, logits_per_text=logits_per_text,
                         text_embeds=text_embeds, image_embeds=image_embeds, text_model_output=text_outputs,
                         vision_model_output=vision_outputs)
    return out if return_dict else out.to_tuple()


# --- the model classes -------------------------------------------------------------------------------
class FlaxCLIPTextPreTrainedModel(FlaxPreTrainedModel):
    config_class = CLIPTextConfig
    # transformers 5 saves a lone tower without it, 4.x (and the Hub's checkpoints) with it
    base_model_prefix = "text_model"

    def __call__(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        position_ids: Any = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        return self._apply(self._token_inputs(input_ids, attention_mask, position_ids), params=params,
                           past_key_values=None, dropout_rng=dropout_rng, train=train,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=return_dict)

    def dummy_inputs(self, input_shape):
        return {**super().dummy_inputs(input_shape), "position_ids": jnp.zeros(input_shape, "i4")}


class FlaxCLIPTextModel(FlaxCLIPTextPreTrainedModel):
    module_class = FlaxCLIPTextModule


class FlaxCLIPTextModelWithProjection(FlaxCLIPTextPreTrainedModel):
    module_class = FlaxCLIPTextModelWithProjectionModule


class FlaxCLIPVisionPreTrainedModel(FlaxPixelModel):
    config_class = CLIPVisionConfig
    base_model_prefix = "vision_model"


class FlaxCLIPVisionModel(FlaxCLIPVisionPreTrainedModel):
    module_class = FlaxCLIPVisionModule


class FlaxCLIPVisionModelWithProjection(FlaxCLIPVisionPreTrainedModel):
    module_class = FlaxCLIPVisionModelWithProjectionModule


class FlaxDualEncoderModel(FlaxPixelModel):
    """A text tower and a vision tower in one space: the joint `__call__`, `get_text_features` and
    `get_image_features`. Its module has `text_features` and `image_features` methods."""

    main_input_name = "input_ids"

    @staticmethod
    def default_input_shape(config):
        return ((1, 1), FlaxPixelModel.default_input_shape(config.vision_config))

    def dummy_inputs(self, input_shape):
        text_shape, image_shape = input_shape
        ids = jnp.zeros(text_shape, "i4")
        return {"input_ids": ids, "pixel_values": jnp.zeros(image_shape, jnp.float32), "attention_mask": ids + 1,
                "position_ids": ids}

    @property
    def _token_config(self):
        return self.config.text_config

    @property
    def _image_config(self):
        return self.config.vision_config

    def __call__(
        self,
        input_ids: Any,
        pixel_values: Any,
        attention_mask: Any = None,
        position_ids: Any = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        return_loss: bool = False,
    ):
        inputs = {**self._token_inputs(input_ids, attention_mask, position_ids),
                  "pixel_values": self._pixel_values(pixel_values), "return_loss": return_loss}
        return self._apply(inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=return_dict)

    def get_text_features(self, input_ids: Any, attention_mask: Any = None, position_ids: Any = None,
                          params: dict | None = None, dropout_rng: jax.Array | None = None, train: bool = False):
        """The projected pooled text states [B, projection_dim] (not normalised)."""
        inputs = self._token_inputs(input_ids, attention_mask, position_ids)
        return self._features(self.module.text_features, inputs, params, dropout_rng, train)

    def get_image_features(self, pixel_values: Any, params: dict | None = None, dropout_rng: jax.Array | None = None,
                           train: bool = False):
        """The projected pooled image states [B, projection_dim] (not normalised)."""
        inputs = {"pixel_values": self._pixel_values(pixel_values)}
        return self._features(self.module.image_features, inputs, params, dropout_rng, train)

    def _features(self, method, inputs, params, dropout_rng, train):
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
        return self.module.apply({"params": params if params is not None else self.params}, **inputs,
                                 deterministic=not train, rngs=rngs, method=method)


class FlaxCLIPPreTrainedModel(FlaxDualEncoderModel):
    config_class = CLIPConfig


class FlaxCLIPModel(FlaxCLIPPreTrainedModel):
    module_class = FlaxCLIPModule


__all__ = [
    "FlaxCLIPModel", "FlaxCLIPOutput", "FlaxCLIPPreTrainedModel", "FlaxCLIPTextModel", "FlaxCLIPTextModelOutput",
    "FlaxCLIPTextModelWithProjection", "FlaxCLIPTextPreTrainedModel", "FlaxCLIPVisionModel",
    "FlaxCLIPVisionModelOutput", "FlaxCLIPVisionModelWithProjection", "FlaxCLIPVisionPreTrainedModel",
    "FlaxDualEncoderModel", "clip_loss", "contrastive_loss", "joint_outputs",
]

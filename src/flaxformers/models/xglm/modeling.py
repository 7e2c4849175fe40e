"""XGLM in Flax: FlaxXGLMModel and FlaxXGLMForCausalLM, with transformers 4.x Flax param names.

What is XGLM's own: fixed sinusoidal positions (fairseq's table, `nn.positions`) read 2 rows in, with
the `pad_token_id` row zeroed as transformers builds it; word embeddings scaled by sqrt(d_model);
pre-norm layers with an optional cross-attention over encoder states (`add_cross_attention`).
Params: `model/layers/0/self_attn/q_proj/kernel`, `model/layer_norm/scale`, `lm_head/kernel`.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from flaxformers.modeling_utils import FlaxCrossAttendingDecoderModel
from flaxformers.models.xglm.configuration import XGLMConfig
from flaxformers.nn.attention import AttentionSpec, MultiHeadAttention
from flaxformers.nn.layers import activation, layer_norm, tied_logits
from flaxformers.nn.positions import sinusoidal_positions
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import (
    FlaxBaseModelOutputWithPastAndCrossAttentions,
    FlaxCausalLMOutputWithCrossAttentions,
    stack_output,
)

POSITION_OFFSET = 2  # fairseq's: rows 0 and 1 of the position table precede position 0
LAYER_NORM_EPS = 1e-5


def _dense(cfg: XGLMConfig, features: int, dtype: jnp.dtype, name: str, use_bias: bool = True) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=nn.initializers.normal(cfg.init_std),
                    name=name)


class FlaxXGLMDecoderLayer(nn.Module):
    config: XGLMConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, encoder_hidden_states, encoder_attention_mask, deterministic=True,
                 init_cache=False, output_attentions=False):
        cfg = self.config
        drop = lambda x, rate=cfg.dropout: nn.Dropout(rate)(x, deterministic=deterministic)  # noqa: E731
        scale = (cfg.d_model // cfg.attention_heads) ** -0.5
        attention = lambda name, causal: MultiHeadAttention(  # noqa: E731
            cfg.attention_heads, AttentionSpec(scale, causal, dropout_rate=cfg.attention_dropout),
            kernel_init=nn.initializers.normal(cfg.init_std), dtype=self.dtype, name=name,
        )
        norm = lambda name: layer_norm(LAYER_NORM_EPS, self.dtype, name)  # noqa: E731
        out, weights = attention("self_attn", True)(
            norm("self_attn_layer_norm")(hidden), attention_mask, deterministic=deterministic, init_cache=init_cache
        )
        hidden = hidden + drop(out)
        cross_weights = None
        if encoder_hidden_states is not None:
            if not cfg.add_cross_attention:
                raise ValueError("encoder_hidden_states were passed, but this model has no cross-attention layers: "
                                 "set config.add_cross_attention=True.")
            out, cross_weights = attention("encoder_attn", False)(
                norm("encoder_attn_layer_norm")(hidden), encoder_attention_mask,
                key_value_states=encoder_hidden_states, deterministic=deterministic,
            )
            hidden = hidden + drop(out)
        x = activation(cfg.activation_function)(_dense(cfg, cfg.ffn_dim, self.dtype, "fc1")(
            norm("final_layer_norm")(hidden)))  # [B, T, F]
        x = _dense(cfg, cfg.d_model, self.dtype, "fc2")(drop(x, cfg.activation_dropout))
        hidden = hidden + drop(x)
        if not output_attentions:
            weights = cross_weights = None
        return hidden, weights, cross_weights


class FlaxXGLMModule(nn.Module):
    config: XGLMConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.embed_tokens = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=self.dtype,
                                     embedding_init=nn.initializers.normal(cfg.init_std))
        self.layers = LayerStack(
            FlaxXGLMDecoderLayer, cfg.num_layers, {"config": cfg, "dtype": self.dtype},
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        )
        self.layer_norm = layer_norm(LAYER_NORM_EPS, self.dtype)
        self.dropout = nn.Dropout(cfg.dropout)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, deterministic=True, init_cache=False, output_attentions=False,
                 output_hidden_states=False, return_dict=True):
        cfg = self.config
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
        scale = math.sqrt(cfg.d_model) if cfg.scale_embedding else 1.0
        hidden = self.embed_tokens(input_ids.astype("i4")) * scale  # [B, T, D]
        # transformers' table row `position + 2`, its `pad_token_id` row zeroed
        rows = sinusoidal_positions(position_ids.astype("i4") + POSITION_OFFSET, cfg.d_model, cfg.pad_token_id)
        hidden = hidden + rows.astype(self.dtype)
        hidden = self.dropout(hidden, deterministic=deterministic)
        hidden, all_hidden, attentions, cross = self.layers(
            hidden, (attention_mask, encoder_hidden_states, encoder_attention_mask),
            deterministic, init_cache, output_attentions, output_hidden_states,
        )
        hidden = self.layer_norm(hidden)
        return stack_output(hidden, all_hidden, attentions, cross, output_hidden_states=output_hidden_states,
                            return_dict=return_dict, output_type=FlaxBaseModelOutputWithPastAndCrossAttentions)


class FlaxXGLMForCausalLMModule(nn.Module):
    config: XGLMConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.model = FlaxXGLMModule(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg, cfg.vocab_size, self.dtype, "lm_head", use_bias=False)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, deterministic=True, init_cache=False, output_attentions=False,
                 output_hidden_states=False, return_dict=True):
        outputs = self.model(
            input_ids, attention_mask, position_ids, encoder_hidden_states, encoder_attention_mask,
            deterministic=deterministic, init_cache=init_cache, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict,
        )
        hidden = outputs[0]
        if self.config.tie_word_embeddings:
            logits = tied_logits(hidden, self.model.embed_tokens.embedding, self.dtype)  # [B, T, V]
        else:
            logits = self.lm_head(hidden)
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutputWithCrossAttentions(
            logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )


class FlaxXGLMPreTrainedModel(FlaxCrossAttendingDecoderModel):
    config_class = XGLMConfig
    base_model_prefix = "model"
    # The sinusoidal table: a buffer some older PyTorch checkpoints saved.
    _keys_to_ignore_on_load_unexpected = (r"embed_positions\.weights$",)
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def dummy_inputs(self, input_shape):
        inputs = super().dummy_inputs(input_shape)
        if self.config.add_cross_attention:
            inputs["encoder_hidden_states"] = jnp.zeros((*input_shape, self.config.d_model), self.dtype)
            inputs["encoder_attention_mask"] = inputs["attention_mask"]
        return inputs


class FlaxXGLMModel(FlaxXGLMPreTrainedModel):
    module_class = FlaxXGLMModule


class FlaxXGLMForCausalLM(FlaxXGLMPreTrainedModel):
    module_class = FlaxXGLMForCausalLMModule
    is_causal_lm = True


__all__ = ["FlaxXGLMModel", "FlaxXGLMForCausalLM", "FlaxXGLMPreTrainedModel"]

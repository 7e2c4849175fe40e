"""GPT-2 in Flax: FlaxGPT2Model and FlaxGPT2LMHeadModel, with transformers 4.x Flax param names.

What is GPT-2's own: Conv1D-layout projections (`c_attn`, `c_proj`, `c_fc`), learned absolute
positions, pre-norm blocks, optional cross-attention and the attention-scale switches.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.models.gpt2.configuration import GPT2Config
from flaxformers.nn.attention import AttentionSpec, cross_attention, self_attention
from flaxformers.nn.layers import DenseOutIn, activation, layer_norm, tied_logits
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import (
    FlaxBaseModelOutputWithPastAndCrossAttentions,
    FlaxCausalLMOutputWithCrossAttentions,
    stack_output,
)


def _attention_spec(config: GPT2Config, layer_idx: int, causal: bool) -> AttentionSpec:
    head_dim = config.n_embd // config.n_head
    scale = 1.0 / math.sqrt(head_dim) if config.scale_attn_weights else 1.0
    if config.scale_attn_by_inverse_layer_idx:
        scale /= layer_idx + 1
    return AttentionSpec(scale=scale, causal=causal, dropout_rate=config.attn_pdrop)


class FlaxGPT2Attention(nn.Module):
    config: GPT2Config
    layer_idx: int = 0
    is_cross_attention: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, key_value_states=None, deterministic=True, init_cache=False):
        cfg = self.config
        d, n = cfg.n_embd, cfg.n_head
        dense = lambda features, name: DenseOutIn(  # noqa: E731
            features, dtype=self.dtype, kernel_init=nn.initializers.normal(cfg.initializer_range), name=name
        )
        b, t, _ = hidden.shape
        spec = _attention_spec(cfg, self.layer_idx, causal=not self.is_cross_attention)
        if self.is_cross_attention:
            query = dense(d, "q_attn")(hidden)  # [B, T, D]
            key, value = jnp.split(dense(2 * d, "c_attn")(key_value_states), 2, axis=-1)  # [B, S, D] each
        else:
            query, key, value = jnp.split(dense(3 * d, "c_attn")(hidden), 3, axis=-1)
        heads = lambda x: x.reshape(x.shape[0], x.shape[1], n, d // n)  # noqa: E731  [B, T, N, H]
        query, key, value = heads(query), heads(key), heads(value)
        if self.is_cross_attention:
            out, weights = cross_attention(self, query, key, value, spec, attention_mask, deterministic=deterministic)
        else:
            out, weights = self_attention(
                self, query, key, value, spec, attention_mask, init_cache=init_cache, deterministic=deterministic
            )
        out = dense(d, "c_proj")(out.reshape(b, t, d))
        out = nn.Dropout(cfg.resid_pdrop)(out, deterministic=deterministic)
        return out, weights


class FlaxGPT2MLP(nn.Module):
    config: GPT2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic=True):
        cfg = self.config
        init = nn.initializers.normal(cfg.initializer_range)
        inner = cfg.n_inner if cfg.n_inner is not None else 4 * cfg.n_embd
        hidden = DenseOutIn(inner, dtype=self.dtype, kernel_init=init, name="c_fc")(hidden)
        hidden = activation(cfg.activation_function)(hidden)
        hidden = DenseOutIn(cfg.n_embd, dtype=self.dtype, kernel_init=init, name="c_proj")(hidden)
        return nn.Dropout(cfg.resid_pdrop)(hidden, deterministic=deterministic)


class FlaxGPT2Block(nn.Module):
    config: GPT2Config
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @staticmethod
    def layer_kind(config: GPT2Config, layer_idx: int) -> int | None:
        """What scan-over-layers must not share: the attention scale, when it depends on the layer."""
        return layer_idx if config.scale_attn_by_inverse_layer_idx else None

    @nn.compact
    def __call__(self, hidden, attention_mask, encoder_hidden_states, encoder_attention_mask,
                 deterministic=True, init_cache=False, output_attentions=False):
        cfg = self.config
        eps = cfg.layer_norm_epsilon
        attn_out, self_weights = FlaxGPT2Attention(cfg, self.layer_idx, dtype=self.dtype, name="attn")(
            layer_norm(eps, self.dtype, "ln_1")(hidden), attention_mask,
            deterministic=deterministic, init_cache=init_cache,
        )
        hidden = hidden + attn_out
        cross_weights = None
        if encoder_hidden_states is not None:
            if not cfg.add_cross_attention:
                raise ValueError(
                    "encoder_hidden_states were passed, but this model has no cross-attention layers: "
                    "set config.add_cross_attention=True."
                )
            cross_out, cross_weights = FlaxGPT2Attention(
                cfg, self.layer_idx, is_cross_attention=True, dtype=self.dtype, name="crossattention"
            )(layer_norm(eps, self.dtype, "ln_cross_attn")(hidden), encoder_attention_mask,
              key_value_states=encoder_hidden_states, deterministic=deterministic)
            hidden = hidden + cross_out
        hidden = hidden + FlaxGPT2MLP(cfg, dtype=self.dtype, name="mlp")(
            layer_norm(eps, self.dtype, "ln_2")(hidden), deterministic=deterministic
        )
        if not output_attentions:
            self_weights = cross_weights = None
        return hidden, self_weights, cross_weights


class FlaxGPT2Module(nn.Module):
    config: GPT2Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        init = nn.initializers.normal(cfg.initializer_range)
        self.wte = nn.Embed(cfg.vocab_size, cfg.n_embd, embedding_init=init, dtype=self.dtype)
        self.wpe = nn.Embed(cfg.n_positions, cfg.n_embd, embedding_init=init, dtype=self.dtype)
        self.drop = nn.Dropout(cfg.embd_pdrop)
        self.h = LayerStack(
            FlaxGPT2Block, cfg.n_layer, {"config": cfg, "dtype": self.dtype},
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        )
        self.ln_f = layer_norm(cfg.layer_norm_epsilon, self.dtype)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, deterministic=True, init_cache=False, output_attentions=False,
                 output_hidden_states=False, return_dict=True):
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
        hidden = self.wte(input_ids.astype("i4")) + self.wpe(position_ids.astype("i4"))  # [B, T, D]
        hidden = self.drop(hidden, deterministic=deterministic)
        hidden, all_hidden, attentions, cross = self.h(
            hidden, (attention_mask, encoder_hidden_states, encoder_attention_mask),
            deterministic, init_cache, output_attentions, output_hidden_states,
        )
        hidden = self.ln_f(hidden)
        return stack_output(hidden, all_hidden, attentions, cross, output_hidden_states=output_hidden_states,
                            return_dict=return_dict, output_type=FlaxBaseModelOutputWithPastAndCrossAttentions)


class FlaxGPT2LMHeadModule(nn.Module):
    config: GPT2Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.transformer = FlaxGPT2Module(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if not cfg.tie_word_embeddings:
            self.lm_head = nn.Dense(cfg.vocab_size, use_bias=False, dtype=self.dtype,
                                    kernel_init=nn.initializers.normal(cfg.initializer_range))

    def __call__(self, input_ids, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, deterministic=True, init_cache=False, output_attentions=False,
                 output_hidden_states=False, return_dict=True):
        outputs = self.transformer(
            input_ids, attention_mask, position_ids, encoder_hidden_states, encoder_attention_mask,
            deterministic=deterministic, init_cache=init_cache, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict,
        )
        hidden = outputs[0]
        if self.config.tie_word_embeddings:
            logits = tied_logits(hidden, self.transformer.wte.embedding, self.dtype)
        else:
            logits = self.lm_head(hidden)
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutputWithCrossAttentions(
            logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )


class FlaxGPT2PreTrainedModel(FlaxPreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    # Causal-mask buffers that old PyTorch checkpoints carry.
    _keys_to_ignore_on_load_unexpected = (r"(^|\.)(attn|crossattention)\.(masked_)?bias$",)
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def dummy_inputs(self, input_shape):
        inputs = super().dummy_inputs(input_shape)
        inputs["position_ids"] = jnp.broadcast_to(jnp.arange(input_shape[-1]), input_shape)
        if self.config.add_cross_attention:
            inputs["encoder_hidden_states"] = jnp.zeros((*input_shape, self.config.n_embd), self.dtype)
            inputs["encoder_attention_mask"] = inputs["attention_mask"]
        return inputs

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        params: dict | None = None,
        past_key_values: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        if encoder_hidden_states is not None and encoder_attention_mask is None:
            encoder_attention_mask = jnp.ones(jnp.shape(encoder_hidden_states)[:2], dtype="i4")
        inputs = self._token_inputs(input_ids, attention_mask, position_ids, past_key_values)
        inputs["encoder_hidden_states"] = encoder_hidden_states
        inputs["encoder_attention_mask"] = encoder_attention_mask
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


class FlaxGPT2Model(FlaxGPT2PreTrainedModel):
    module_class = FlaxGPT2Module


class FlaxGPT2LMHeadModel(FlaxGPT2PreTrainedModel):
    module_class = FlaxGPT2LMHeadModule
    is_causal_lm = True

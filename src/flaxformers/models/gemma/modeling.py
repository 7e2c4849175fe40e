"""Gemma, Gemma 2 and Gemma 3 (text) in Flax: one module, switched by the config.

What is Gemma's own: `(1 + w)` RMSNorms, embeddings scaled by sqrt(hidden), GeGLU MLPs, RoPE and
grouped-query attention with a free `head_dim`. Gemma 2 adds norms after attention and around the MLP,
`query_pre_attn_scalar`, sliding-window layers and logit soft-capping; Gemma 3 adds q/k norms and a
separate rope base for the sliding layers. Parameter names are transformers 4.x Flax Gemma's
(`model/layers/0/self_attn/q_proj/kernel`, `.../input_layernorm/weight`), which are PyTorch's names too.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.models.gemma.configuration import Gemma2Config, Gemma3TextConfig, GemmaConfig
from flaxformers.nn.attention import AttentionSpec, self_attention
from flaxformers.nn.layers import RMSNorm, activation, apply_rope, tied_logits
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import FlaxBaseModelOutput, FlaxCausalLMOutput


def _dense(cfg: GemmaConfig, features: int, dtype: jnp.dtype, name: str, use_bias: bool = False) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, dtype=dtype,
                    kernel_init=nn.initializers.normal(cfg.initializer_range), name=name)


def _norm(cfg: GemmaConfig, dtype: jnp.dtype, name: str | None = None) -> RMSNorm:
    return RMSNorm(epsilon=cfg.rms_norm_eps, offset=1.0, dtype=dtype, name=name)


class FlaxGemmaAttention(nn.Module):
    config: GemmaConfig
    layer_idx: int = 0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids, deterministic=True, init_cache=False):
        cfg = self.config
        n, k, h = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        b, t, _ = hidden.shape
        layer_type = cfg.layer_types[self.layer_idx]
        proj = lambda features, name: _dense(cfg, features, self.dtype, name, cfg.attention_bias)  # noqa: E731
        query = proj(n * h, "q_proj")(hidden).reshape(b, t, n, h)  # [B, T, N, H]
        key = proj(k * h, "k_proj")(hidden).reshape(b, t, k, h)  # [B, T, K, H]
        value = proj(k * h, "v_proj")(hidden).reshape(b, t, k, h)
        if cfg.qk_norm:
            query = _norm(cfg, self.dtype, "q_norm")(query)
            key = _norm(cfg, self.dtype, "k_norm")(key)
        base, scaling = cfg.rope_for(layer_type)
        query = apply_rope(query, position_ids, base, scaling)
        key = apply_rope(key, position_ids, base, scaling)
        spec = AttentionSpec(
            scale=cfg.attention_scale, causal=True, sliding_window=cfg.window_for(layer_type),
            softcap=cfg.attention_softcap, dropout_rate=cfg.attention_dropout,
        )
        out, weights = self_attention(
            self, query, key, value, spec, attention_mask, init_cache=init_cache, deterministic=deterministic
        )
        return proj(cfg.hidden_size, "o_proj")(out.reshape(b, t, n * h)), weights


class FlaxGemmaMLP(nn.Module):
    config: GemmaConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        gate = _dense(cfg, cfg.intermediate_size, self.dtype, "gate_proj")(hidden)  # [B, T, F]
        up = _dense(cfg, cfg.intermediate_size, self.dtype, "up_proj")(hidden)
        return _dense(cfg, cfg.hidden_size, self.dtype, "down_proj")(activation(cfg.hidden_activation_name)(gate) * up)


class FlaxGemmaDecoderLayer(nn.Module):
    config: GemmaConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids, deterministic=True, init_cache=False,
                 output_attentions=False):
        cfg = self.config
        attn_out, weights = FlaxGemmaAttention(cfg, self.layer_idx, self.dtype, name="self_attn")(
            _norm(cfg, self.dtype, "input_layernorm")(hidden), attention_mask, position_ids,
            deterministic=deterministic, init_cache=init_cache,
        )
        # Gemma 1 names its pre-MLP norm `post_attention_layernorm`; Gemma 2/3 use that name for the
        # norm of the attention output and add `pre_/post_feedforward_layernorm` around the MLP.
        if cfg.sandwich_norms:
            attn_out = _norm(cfg, self.dtype, "post_attention_layernorm")(attn_out)
        hidden = hidden + attn_out
        mlp_norm = "pre_feedforward_layernorm" if cfg.sandwich_norms else "post_attention_layernorm"
        mlp_out = FlaxGemmaMLP(cfg, self.dtype, name="mlp")(_norm(cfg, self.dtype, mlp_norm)(hidden))
        if cfg.sandwich_norms:
            mlp_out = _norm(cfg, self.dtype, "post_feedforward_layernorm")(mlp_out)
        return hidden + mlp_out, weights if output_attentions else None, None


class FlaxGemmaModule(nn.Module):
    config: GemmaConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.embed_tokens = nn.Embed(cfg.vocab_size, cfg.hidden_size, dtype=self.dtype,
                                     embedding_init=nn.initializers.normal(cfg.initializer_range))
        self.layers = LayerStack(
            FlaxGemmaDecoderLayer, cfg.num_hidden_layers, {"config": cfg, "dtype": self.dtype},
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        )
        self.norm = _norm(cfg, self.dtype)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
        # The scale is rounded to the compute dtype first, as in transformers (55.4256 -> 55.5 in bf16).
        normalizer = jnp.asarray(self.config.hidden_size**0.5, dtype=self.dtype)
        hidden = self.embed_tokens(input_ids.astype("i4")) * normalizer  # [B, T, D]
        hidden, all_hidden, attentions, _ = self.layers(
            hidden, (attention_mask, position_ids), deterministic, init_cache, output_attentions, output_hidden_states
        )
        hidden = self.norm(hidden)
        if output_hidden_states:
            all_hidden = all_hidden + (hidden,)
        if not return_dict:
            return tuple(v for v in (hidden, all_hidden, attentions) if v is not None)
        return FlaxBaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=attentions)


class FlaxGemmaForCausalLMModule(nn.Module):
    config: GemmaConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.model = FlaxGemmaModule(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg, cfg.vocab_size, self.dtype, "lm_head")

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        cfg = self.config
        outputs = self.model(
            input_ids, attention_mask, position_ids, deterministic=deterministic, init_cache=init_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )
        hidden = outputs[0]
        if cfg.tie_word_embeddings:
            logits = tied_logits(hidden, self.model.embed_tokens.embedding, self.dtype)  # [B, T, V]
        else:
            logits = self.lm_head(hidden)
        if cfg.final_softcap is not None:
            logits = jnp.tanh(logits / cfg.final_softcap) * cfg.final_softcap
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxGemmaPreTrainedModel(FlaxPreTrainedModel):
    config_class = GemmaConfig
    base_model_prefix = "model"
    _keys_to_ignore_on_load_unexpected = (r"rotary_emb\.inv_freq$",)  # a buffer in old PyTorch checkpoints
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def dummy_inputs(self, input_shape):
        inputs = super().dummy_inputs(input_shape)
        inputs["position_ids"] = jnp.broadcast_to(jnp.arange(input_shape[-1]), input_shape)
        return inputs

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        params: dict | None = None,
        past_key_values: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        inputs = self._token_inputs(input_ids, attention_mask, position_ids, past_key_values)
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


class FlaxGemmaModel(FlaxGemmaPreTrainedModel):
    module_class = FlaxGemmaModule


class FlaxGemmaForCausalLM(FlaxGemmaPreTrainedModel):
    module_class = FlaxGemmaForCausalLMModule
    is_causal_lm = True


# Gemma 2 and Gemma 3 differ only by config: the same modules, under their own config classes.
class FlaxGemma2Model(FlaxGemmaModel):
    config_class = Gemma2Config


class FlaxGemma2ForCausalLM(FlaxGemmaForCausalLM):
    config_class = Gemma2Config


class FlaxGemma3Model(FlaxGemmaModel):
    config_class = Gemma3TextConfig


class FlaxGemma3ForCausalLM(FlaxGemmaForCausalLM):
    config_class = Gemma3TextConfig


__all__ = [
    "FlaxGemmaPreTrainedModel", "FlaxGemmaModel", "FlaxGemmaForCausalLM",
    "FlaxGemma2Model", "FlaxGemma2ForCausalLM", "FlaxGemma3Model", "FlaxGemma3ForCausalLM",
]

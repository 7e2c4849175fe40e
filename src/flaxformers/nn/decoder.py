"""The pre-norm RoPE decoder of the Llama lineage, once: Llama, Mistral, Qwen 2/3 and Gemma 1/2/3 use it.

Token embedding -> blocks of (RMSNorm, grouped-query attention with RoPE, residual, RMSNorm, gated MLP,
residual) -> RMSNorm -> an untied head or the embedding read in place. Parameter names are
transformers' (`model/embed_tokens/embedding`, `model/layers/0/self_attn/q_proj/kernel`,
`.../input_layernorm/weight`, `model/norm/weight`, `lm_head/kernel`), as its 4.x Flax classes had them.

What differs between families, the config answers (so this file has no family branches):

- `layer_types`, `rope_for(layer_type) -> RopeSpec`, `window_for(layer_type)`: per-layer attention
- `attention_scale`, `attention_softcap`, `final_softcap`: scores and logits
- `qkv_bias`, `o_bias`, `mlp_bias`, `hidden_activation_name`: projections and the MLP
- `norm_offset` (Gemma's `x * (1 + w)`), `scale_embeddings` (times sqrt(hidden)), `sandwich_norms`
  (norms after attention and around the MLP), `qk_norm` (RMSNorm on each query and key head)
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.nn.attention import AttentionSpec, self_attention
from flaxformers.nn.layers import RMSNorm, activation, tied_logits
from flaxformers.nn.rope import apply_rope, rope_cos_sin
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import FlaxCausalLMOutput, stack_output


def _dense(cfg: Any, features: int, dtype: jnp.dtype, name: str, use_bias: bool = False) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, dtype=dtype,
                    kernel_init=nn.initializers.normal(cfg.initializer_range), name=name)


def _norm(cfg: Any, dtype: jnp.dtype, name: str | None = None) -> RMSNorm:
    return RMSNorm(epsilon=cfg.rms_norm_eps, offset=cfg.norm_offset, dtype=dtype, name=name)


class DecoderAttention(nn.Module):
    config: Any
    layer_idx: int = 0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids, deterministic=True, init_cache=False):
        cfg = self.config
        n, k, h = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        b, t, _ = hidden.shape
        layer_type = cfg.layer_types[self.layer_idx]
        query = _dense(cfg, n * h, self.dtype, "q_proj", cfg.qkv_bias)(hidden).reshape(b, t, n, h)  # [B, T, N, H]
        key = _dense(cfg, k * h, self.dtype, "k_proj", cfg.qkv_bias)(hidden).reshape(b, t, k, h)  # [B, T, K, H]
        value = _dense(cfg, k * h, self.dtype, "v_proj", cfg.qkv_bias)(hidden).reshape(b, t, k, h)
        if cfg.qk_norm:
            query = _norm(cfg, self.dtype, "q_norm")(query)
            key = _norm(cfg, self.dtype, "k_norm")(key)
        rope = cfg.rope_for(layer_type)
        cos, sin = rope_cos_sin(rope, position_ids, query.dtype)  # [B, T, R]
        query, key = apply_rope(query, cos, sin, rope), apply_rope(key, cos, sin, rope)
        spec = AttentionSpec(
            scale=cfg.attention_scale, causal=True, sliding_window=cfg.window_for(layer_type),
            softcap=cfg.attention_softcap, dropout_rate=cfg.attention_dropout,
        )
        out, weights = self_attention(
            self, query, key, value, spec, attention_mask, init_cache=init_cache, deterministic=deterministic
        )
        return _dense(cfg, cfg.hidden_size, self.dtype, "o_proj", cfg.o_bias)(out.reshape(b, t, n * h)), weights


class GatedMLP(nn.Module):
    """down(act(gate(x)) * up(x))."""

    config: Any
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        dense = lambda features, name: _dense(cfg, features, self.dtype, name, cfg.mlp_bias)  # noqa: E731
        gate = dense(cfg.intermediate_size, "gate_proj")(hidden)  # [B, T, F]
        up = dense(cfg.intermediate_size, "up_proj")(hidden)
        return dense(cfg.hidden_size, "down_proj")(activation(cfg.hidden_activation_name)(gate) * up)


class DecoderLayer(nn.Module):
    config: Any
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids, deterministic=True, init_cache=False,
                 output_attentions=False):
        cfg = self.config
        attn_out, weights = DecoderAttention(cfg, self.layer_idx, self.dtype, name="self_attn")(
            _norm(cfg, self.dtype, "input_layernorm")(hidden), attention_mask, position_ids,
            deterministic=deterministic, init_cache=init_cache,
        )
        # Without sandwich norms the pre-MLP norm is `post_attention_layernorm` (transformers' name);
        # with them that name is the norm of the attention output, and `pre_/post_feedforward_layernorm`
        # surround the MLP.
        if cfg.sandwich_norms:
            attn_out = _norm(cfg, self.dtype, "post_attention_layernorm")(attn_out)
        hidden = hidden + attn_out
        mlp_norm = "pre_feedforward_layernorm" if cfg.sandwich_norms else "post_attention_layernorm"
        mlp_out = GatedMLP(cfg, self.dtype, name="mlp")(_norm(cfg, self.dtype, mlp_norm)(hidden))
        if cfg.sandwich_norms:
            mlp_out = _norm(cfg, self.dtype, "post_feedforward_layernorm")(mlp_out)
        return hidden + mlp_out, weights if output_attentions else None, None


class DecoderModule(nn.Module):
    """The base model: embeddings, the layer stack, the final norm."""

    config: Any
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.embed_tokens = nn.Embed(cfg.vocab_size, cfg.hidden_size, dtype=self.dtype,
                                     embedding_init=nn.initializers.normal(cfg.initializer_range))
        self.layers = LayerStack(
            DecoderLayer, cfg.num_hidden_layers, {"config": cfg, "dtype": self.dtype},
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        )
        self.norm = _norm(cfg, self.dtype)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
        hidden = self.embed_tokens(input_ids.astype("i4"))  # [B, T, D]
        if self.config.scale_embeddings:
            # The scale is rounded to the compute dtype first, as in transformers (55.4256 -> 55.5 in bf16).
            hidden = hidden * jnp.asarray(self.config.hidden_size**0.5, dtype=self.dtype)
        hidden, all_hidden, attentions, _ = self.layers(
            hidden, (attention_mask, position_ids), deterministic, init_cache, output_attentions, output_hidden_states
        )
        hidden = self.norm(hidden)
        return stack_output(hidden, all_hidden, attentions, output_hidden_states=output_hidden_states,
                            return_dict=return_dict)


class DecoderForCausalLMModule(nn.Module):
    """The base model under `model`, and `lm_head` (or the embedding, read in place, when tied)."""

    config: Any
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.model = DecoderModule(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
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


class DecoderPreTrainedModel(FlaxPreTrainedModel):
    """transformers 4.57's Flax decoder contract: `(input_ids, attention_mask, position_ids, ...)`."""

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


__all__ = [
    "DecoderAttention", "DecoderForCausalLMModule", "DecoderLayer", "DecoderModule", "DecoderPreTrainedModel",
    "GatedMLP",
]

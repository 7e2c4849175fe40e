"""BLOOM in Flax: FlaxBloomModel and FlaxBloomForCausalLM, with transformers 4.x Flax param names.

What is BLOOM's own: no position embeddings but ALiBi (a per-head linear bias on key positions,
counted over real tokens so left padding does not shift it), a LayerNorm right after the word
embedding, one fused QKV projection laid out per head ([N, 3, H] along its output), the option of
taking the residual after the LayerNorm, and an LM head tied to the word embedding.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.models.bloom.configuration import BloomConfig
from flaxformers.nn.attention import AttentionSpec, self_attention
from flaxformers.nn.layers import activation, alibi_bias, layer_norm, tied_logits
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import (
    FlaxBaseModelOutputWithPastAndCrossAttentions,
    FlaxCausalLMOutput,
    stack_output,
)


def _dense(config: BloomConfig, features: int, dtype: jnp.dtype, name: str, use_bias: bool = True) -> nn.Dense:
    init = nn.initializers.normal(config.initializer_range)
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=init, name=name)


class FlaxBloomAttention(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, residual, alibi, attention_mask, deterministic=True, init_cache=False):
        cfg = self.config
        b, t, d = hidden.shape
        n = cfg.n_head
        h = d // n
        # The fused output is per head: [q_0 k_0 v_0 | q_1 k_1 v_1 | ...], each block H wide.
        fused = _dense(cfg, 3 * d, self.dtype, "query_key_value")(hidden).reshape(b, t, n, 3, h)  # [B,T,N,3,H]
        query, key, value = fused[..., 0, :], fused[..., 1, :], fused[..., 2, :]  # [B, T, N, H] each
        spec = AttentionSpec(scale=1.0 / math.sqrt(h), causal=True, dropout_rate=cfg.attention_dropout)
        out, weights = self_attention(
            self, query, key, value, spec, attention_mask, init_cache=init_cache,
            bias_fn=lambda key_len: alibi[..., :key_len], deterministic=deterministic,
        )
        out = _dense(cfg, d, self.dtype, "dense")(out.reshape(b, t, d))  # [B, T, D]
        # Dropout on the branch only, then the residual (PyTorch BLOOM's dropout_add).
        return residual + nn.Dropout(cfg.hidden_dropout)(out, deterministic=deterministic), weights


class FlaxBloomMLP(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, residual, deterministic=True):
        cfg = self.config
        d = cfg.hidden_size
        hidden = _dense(cfg, 4 * d, self.dtype, "dense_h_to_4h")(hidden)  # [B, T, 4D]
        hidden = activation("gelu_pytorch_tanh")(hidden)  # BLOOM's bias-GELU is the tanh approximation
        hidden = _dense(cfg, d, self.dtype, "dense_4h_to_h")(hidden)  # [B, T, D]
        return residual + nn.Dropout(cfg.hidden_dropout)(hidden, deterministic=deterministic)


class FlaxBloomBlock(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, alibi, attention_mask, deterministic=True, init_cache=False,
                 output_attentions=False):
        cfg = self.config
        eps = cfg.layer_norm_epsilon
        post_norm_residual = cfg.apply_residual_connection_post_layernorm
        normed = layer_norm(eps, self.dtype, "input_layernorm")(hidden)
        hidden, weights = FlaxBloomAttention(cfg, dtype=self.dtype, name="self_attention")(
            normed, normed if post_norm_residual else hidden, alibi, attention_mask,
            deterministic=deterministic, init_cache=init_cache,
        )
        normed = layer_norm(eps, self.dtype, "post_attention_layernorm")(hidden)
        hidden = FlaxBloomMLP(cfg, dtype=self.dtype, name="mlp")(
            normed, normed if post_norm_residual else hidden, deterministic=deterministic
        )
        return hidden, weights if output_attentions else None, None


class FlaxBloomModule(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        init = nn.initializers.normal(cfg.initializer_range)
        self.word_embeddings = nn.Embed(cfg.vocab_size, cfg.hidden_size, embedding_init=init, dtype=self.dtype)
        self.word_embeddings_layernorm = layer_norm(cfg.layer_norm_epsilon, self.dtype)
        self.h = LayerStack(
            FlaxBloomBlock, cfg.n_layer, {"config": cfg, "dtype": self.dtype},
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        )
        self.ln_f = layer_norm(cfg.layer_norm_epsilon, self.dtype)

    def __call__(self, input_ids=None, attention_mask=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True, position_ids=None):
        # `position_ids` is accepted for the shared generation engine and ignored: BLOOM has no
        # position embeddings, its ALiBi positions are counted from `attention_mask`.
        del position_ids
        if attention_mask is None:
            attention_mask = jnp.ones(input_ids.shape, dtype="i4")
        hidden = self.word_embeddings_layernorm(self.word_embeddings(input_ids.astype("i4")))  # [B, T, D]
        # [B, N, 1, S]: S is the whole cache length when decoding with a cache.
        alibi = alibi_bias(attention_mask, self.config.n_head)
        hidden, all_hidden, attentions, _ = self.h(
            hidden, (alibi, attention_mask), deterministic, init_cache, output_attentions, output_hidden_states
        )
        hidden = self.ln_f(hidden)
        return stack_output(hidden, all_hidden, attentions, output_hidden_states=output_hidden_states,
                            return_dict=return_dict, output_type=FlaxBaseModelOutputWithPastAndCrossAttentions)


class FlaxBloomForCausalLMModule(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.transformer = FlaxBloomModule(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg, cfg.vocab_size, self.dtype, "lm_head", use_bias=False)

    def __call__(self, input_ids, attention_mask=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True, position_ids=None):
        outputs = self.transformer(
            input_ids, attention_mask, deterministic=deterministic, init_cache=init_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=return_dict, position_ids=position_ids,
        )
        hidden = outputs[0]
        if self.config.tie_word_embeddings:
            logits = tied_logits(hidden, self.transformer.word_embeddings.embedding, self.dtype)  # [B, T, V]
        else:
            logits = self.lm_head(hidden)
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBloomPreTrainedModel(FlaxPreTrainedModel):
    config_class = BloomConfig
    base_model_prefix = "transformer"
    _tied_weights_keys = {"lm_head.weight": "transformer.word_embeddings.weight"}

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        past_key_values: dict | None = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        inputs = self._token_inputs(input_ids, attention_mask, past_key_values=past_key_values, with_positions=False)
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


class FlaxBloomModel(FlaxBloomPreTrainedModel):
    module_class = FlaxBloomModule


class FlaxBloomForCausalLM(FlaxBloomPreTrainedModel):
    module_class = FlaxBloomForCausalLMModule
    is_causal_lm = True

    # transformers 4.x Flax BLOOM's hooks for hand-written decode loops: no position ids (ALiBi reads
    # the mask), and a mask over the whole cache, 1 past the prompt since causality hides the future.
    def prepare_inputs_for_generation(self, input_ids, max_length: int, attention_mask=None) -> dict[str, Any]:
        batch_size = jnp.shape(input_ids)[0]
        mask = jnp.ones((batch_size, max_length), dtype="i4")
        if attention_mask is not None:
            mask = jax.lax.dynamic_update_slice(mask, jnp.asarray(attention_mask, dtype="i4"), (0, 0))
        return {"past_key_values": self.init_cache(batch_size, max_length), "attention_mask": mask}

    def update_inputs_for_generation(self, model_outputs, model_kwargs: dict[str, Any]) -> dict[str, Any]:
        model_kwargs["past_key_values"] = model_outputs.past_key_values
        return model_kwargs


__all__ = ["FlaxBloomModel", "FlaxBloomForCausalLM", "FlaxBloomPreTrainedModel"]

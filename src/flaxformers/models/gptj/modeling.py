"""GPT-J in Flax: FlaxGPTJModel and FlaxGPTJForCausalLM, with transformers 4.x Flax param names.

What is GPT-J's own: attention and MLP run in parallel on one LayerNorm's output and are added to the
residual together; rotary positions on the first `rotary_dim` dims of each head, pairs (2i, 2i + 1)
turned (`nn.rope`, the interleaved layout), no position table; bias-free attention projections; an
LM head with a bias (kept on its own when the head is tied to the embedding).
Params: `transformer/h/0/attn/q_proj/kernel`, `transformer/h/0/mlp/fc_in/kernel`, `lm_head/kernel`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.models.gptj.configuration import GPTJConfig
from flaxformers.nn.attention import AttentionSpec, MultiHeadAttention
from flaxformers.nn.decoder import DecoderPreTrainedModel
from flaxformers.nn.layers import FeedForward, layer_norm, tied_logits
from flaxformers.nn.rope import apply_rope, rope_cos_sin
from flaxformers.nn.rope_config import RopeSpec
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import FlaxCausalLMOutput, stack_output


def _dense(cfg: GPTJConfig, features: int, dtype: jnp.dtype, name: str) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, kernel_init=nn.initializers.normal(cfg.initializer_range), name=name)


class FlaxGPTJBlock(nn.Module):
    config: GPTJConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids, deterministic=True, init_cache=False,
                 output_attentions=False):
        cfg = self.config
        normed = layer_norm(cfg.layer_norm_epsilon, self.dtype, "ln_1")(hidden)

        rope = RopeSpec(theta=10000.0, rotary_dim=cfg.rotated_dims, interleaved=True)

        def rotate(query, key):
            cos, sin = rope_cos_sin(rope, position_ids, query.dtype)  # [B, T, R]
            return apply_rope(query, cos, sin, rope), apply_rope(key, cos, sin, rope)

        spec = AttentionSpec(scale=(cfg.n_embd // cfg.n_head) ** -0.5, dropout_rate=cfg.attn_pdrop)
        attn_out, weights = MultiHeadAttention(
            cfg.n_head, spec, qkv_bias=False, out_bias=False,
            kernel_init=nn.initializers.normal(cfg.initializer_range), dtype=self.dtype, name="attn",
        )(normed, attention_mask, rotate=rotate, deterministic=deterministic, init_cache=init_cache)
        attn_out = nn.Dropout(cfg.resid_pdrop)(attn_out, deterministic=deterministic)
        mlp_out = FeedForward(
            4 * cfg.n_embd if cfg.n_inner is None else cfg.n_inner, cfg.n_embd, cfg.activation_function,
            cfg.resid_pdrop, cfg.initializer_range, ("fc_in", "fc_out"), self.dtype, name="mlp")(normed, deterministic=deterministic)
        return hidden + attn_out + mlp_out, weights if output_attentions else None, None


class FlaxGPTJModule(nn.Module):
    config: GPTJConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.wte = nn.Embed(cfg.vocab_size, cfg.n_embd, dtype=self.dtype,
                            embedding_init=nn.initializers.normal(cfg.initializer_range))
        self.dropout = nn.Dropout(cfg.embd_pdrop)
        self.h = LayerStack(
            FlaxGPTJBlock, cfg.n_layer, {"config": cfg, "dtype": self.dtype},
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        )
        self.ln_f = layer_norm(cfg.layer_norm_epsilon, self.dtype)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
        hidden = self.dropout(self.wte(input_ids.astype("i4")), deterministic=deterministic)  # [B, T, D]
        hidden, all_hidden, attentions, _ = self.h(
            hidden, (attention_mask, position_ids), deterministic, init_cache, output_attentions, output_hidden_states
        )
        hidden = self.ln_f(hidden)
        return stack_output(hidden, all_hidden, attentions, output_hidden_states=output_hidden_states,
                            return_dict=return_dict)


class FlaxGPTJHeadBias(nn.Module):
    """`lm_head/bias` alone: a tied head reads the embedding as its kernel but keeps its own bias."""

    features: int

    @nn.compact
    def __call__(self) -> jax.Array:
        return self.param("bias", nn.initializers.zeros, (self.features,))


class FlaxGPTJForCausalLMModule(nn.Module):
    config: GPTJConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.transformer = FlaxGPTJModule(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if cfg.tie_word_embeddings:
            self.lm_head = FlaxGPTJHeadBias(cfg.vocab_size)
        else:
            self.lm_head = _dense(cfg, cfg.vocab_size, self.dtype, "lm_head")

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        outputs = self.transformer(
            input_ids, attention_mask, position_ids, deterministic=deterministic, init_cache=init_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )
        hidden = outputs[0]
        if self.config.tie_word_embeddings:
            logits = tied_logits(hidden, self.transformer.wte.embedding, self.dtype) + self.lm_head().astype(self.dtype)
        else:
            logits = self.lm_head(hidden)  # [B, T, V]
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxGPTJPreTrainedModel(DecoderPreTrainedModel):  # its call contract
    config_class = GPTJConfig
    base_model_prefix = "transformer"
    # The causal-mask buffers and the sin/cos table that older PyTorch checkpoints carry.
    _keys_to_ignore_on_load_unexpected = (r"\.attn\.(masked_)?bias$", r"\.attn\.embed_positions$")
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}


class FlaxGPTJModel(FlaxGPTJPreTrainedModel):
    module_class = FlaxGPTJModule


class FlaxGPTJForCausalLM(FlaxGPTJPreTrainedModel):
    module_class = FlaxGPTJForCausalLMModule
    is_causal_lm = True


__all__ = ["FlaxGPTJModel", "FlaxGPTJForCausalLM", "FlaxGPTJPreTrainedModel"]

"""GPT-Neo in Flax: FlaxGPTNeoModel and FlaxGPTNeoForCausalLM, with transformers 4.x Flax param names.

What is GPT-Neo's own: layers alternate global attention and local attention over a sliding window
of `window_size` keys (a query sees keys 0 <= q - k < window_size, as transformers' banded mask),
the logits are not scaled by 1/sqrt(head_dim), q/k/v projections have no bias, and positions are
learned. Params: `transformer/h/0/attn/attention/q_proj/kernel` (nn.Dense [in, out] layout).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from flaxformers.models.gpt_neo.configuration import GPTNeoConfig
from flaxformers.nn.attention import AttentionSpec, MultiHeadAttention
from flaxformers.nn.decoder import DecoderPreTrainedModel
from flaxformers.nn.layers import FeedForward, layer_norm, tied_logits
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import FlaxCausalLMOutput, stack_output


def _dense(cfg: GPTNeoConfig, features: int, dtype: jnp.dtype, name: str, use_bias: bool = True) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, dtype=dtype,
                    kernel_init=nn.initializers.normal(cfg.initializer_range), name=name)


class FlaxGPTNeoAttention(nn.Module):
    """The `attn/attention/...` level of the param tree: unscaled logits, bias-free q/k/v, a window on local layers."""

    config: GPTNeoConfig
    layer_idx: int = 0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, deterministic=True, init_cache=False):
        cfg = self.config
        local = cfg.attention_layers[self.layer_idx] == "local"
        spec = AttentionSpec(scale=1.0, sliding_window=cfg.window_size if local else None,
                             dropout_rate=cfg.attention_dropout)
        out, weights = MultiHeadAttention(
            cfg.num_heads, spec, qkv_bias=False, kernel_init=nn.initializers.normal(cfg.initializer_range),
            dtype=self.dtype, name="attention",
        )(hidden, attention_mask, deterministic=deterministic, init_cache=init_cache)
        return nn.Dropout(cfg.resid_dropout)(out, deterministic=deterministic), weights


class FlaxGPTNeoBlock(nn.Module):
    config: GPTNeoConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @staticmethod
    def layer_kind(config: GPTNeoConfig, layer_idx: int) -> str:
        """Global and local layers differ (scan-over-layers groups one period of them)."""
        return config.attention_layers[layer_idx]

    @nn.compact
    def __call__(self, hidden, attention_mask, deterministic=True, init_cache=False, output_attentions=False):
        cfg = self.config
        eps = cfg.layer_norm_epsilon
        attn_out, weights = FlaxGPTNeoAttention(cfg, self.layer_idx, self.dtype, name="attn")(
            layer_norm(eps, self.dtype, "ln_1")(hidden), attention_mask,
            deterministic=deterministic, init_cache=init_cache,
        )
        hidden = hidden + attn_out
        hidden = hidden + FeedForward(
            4 * cfg.hidden_size if cfg.intermediate_size is None else cfg.intermediate_size, cfg.hidden_size,
            cfg.activation_function, cfg.resid_dropout, cfg.initializer_range, ("c_fc", "c_proj"), self.dtype,
            name="mlp")(
            layer_norm(eps, self.dtype, "ln_2")(hidden), deterministic=deterministic
        )
        return hidden, weights if output_attentions else None, None


class FlaxGPTNeoModule(nn.Module):
    config: GPTNeoConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        init = nn.initializers.normal(cfg.initializer_range)
        self.wte = nn.Embed(cfg.vocab_size, cfg.hidden_size, embedding_init=init, dtype=self.dtype)
        self.wpe = nn.Embed(cfg.max_position_embeddings, cfg.hidden_size, embedding_init=init, dtype=self.dtype)
        self.drop = nn.Dropout(cfg.embed_dropout)
        self.h = LayerStack(
            FlaxGPTNeoBlock, cfg.num_layers, {"config": cfg, "dtype": self.dtype},
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        )
        self.ln_f = layer_norm(cfg.layer_norm_epsilon, self.dtype)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
        hidden = self.wte(input_ids.astype("i4")) + self.wpe(position_ids.astype("i4"))  # [B, T, D]
        hidden = self.drop(hidden, deterministic=deterministic)
        hidden, all_hidden, attentions, _ = self.h(
            hidden, (attention_mask,), deterministic, init_cache, output_attentions, output_hidden_states
        )
        hidden = self.ln_f(hidden)
        return stack_output(hidden, all_hidden, attentions, output_hidden_states=output_hidden_states,
                            return_dict=return_dict)


class FlaxGPTNeoForCausalLMModule(nn.Module):
    config: GPTNeoConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.transformer = FlaxGPTNeoModule(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg, cfg.vocab_size, self.dtype, "lm_head", use_bias=False)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        outputs = self.transformer(
            input_ids, attention_mask, position_ids, deterministic=deterministic, init_cache=init_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )
        hidden = outputs[0]
        if self.config.tie_word_embeddings:
            logits = tied_logits(hidden, self.transformer.wte.embedding, self.dtype)  # [B, T, V]
        else:
            logits = self.lm_head(hidden)
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxGPTNeoPreTrainedModel(DecoderPreTrainedModel):  # its call contract
    config_class = GPTNeoConfig
    base_model_prefix = "transformer"
    # The banded causal-mask buffers that older PyTorch checkpoints carry.
    _keys_to_ignore_on_load_unexpected = (r"\.attn\.attention\.(masked_)?bias$",)
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}


class FlaxGPTNeoModel(FlaxGPTNeoPreTrainedModel):
    module_class = FlaxGPTNeoModule


class FlaxGPTNeoForCausalLM(FlaxGPTNeoPreTrainedModel):
    module_class = FlaxGPTNeoForCausalLMModule
    is_causal_lm = True


__all__ = ["FlaxGPTNeoModel", "FlaxGPTNeoForCausalLM", "FlaxGPTNeoPreTrainedModel"]

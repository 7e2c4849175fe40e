"""OPT in Flax: FlaxOPTModel and FlaxOPTForCausalLM, with transformers 4.x Flax param names.

What is OPT's own: learned positions whose table starts 2 rows in (position p reads row p + 2, and
padding, at position -1, reads row 1), positions counted over real tokens of the attention mask,
norms before or after each sublayer (`do_layer_norm_before`: opt-350m is post-norm), and word
embeddings narrower than the model (`word_embed_proj_dim`, opt-350m) projected in and out.
Params: `model/decoder/layers/0/self_attn/q_proj/kernel`, `model/decoder/embed_positions/embedding`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.models.opt.configuration import OPTConfig
from flaxformers.nn.attention import AttentionSpec, MultiHeadAttention
from flaxformers.nn.layers import activation, layer_norm, tied_logits
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import FlaxMaskedLMOutput, stack_output

POSITION_OFFSET = 2  # fairseq's: rows 0 and 1 of the position table precede position 0
LAYER_NORM_EPS = 1e-5


def _dense(cfg: OPTConfig, features: int, dtype: jnp.dtype, name: str, use_bias: bool = True) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=nn.initializers.normal(cfg.init_std),
                    name=name)


def _norm(cfg: OPTConfig, dtype: jnp.dtype, name: str | None = None) -> nn.LayerNorm:
    return layer_norm(LAYER_NORM_EPS, dtype, name, affine=cfg.layer_norm_elementwise_affine)


class FlaxOPTDecoderLayer(nn.Module):
    config: OPTConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, deterministic=True, init_cache=False, output_attentions=False):
        cfg = self.config
        pre_norm = cfg.do_layer_norm_before  # else post-norm (opt-350m): norm after each residual sum
        drop = lambda x: nn.Dropout(cfg.dropout)(x, deterministic=deterministic)  # noqa: E731
        attn_norm, mlp_norm = _norm(cfg, self.dtype, "self_attn_layer_norm"), _norm(cfg, self.dtype, "final_layer_norm")
        spec = AttentionSpec(scale=(cfg.hidden_size // cfg.num_attention_heads) ** -0.5,
                             dropout_rate=cfg.attention_dropout)
        attn_out, weights = MultiHeadAttention(
            cfg.num_attention_heads, spec, cfg.enable_bias, cfg.enable_bias, nn.initializers.normal(cfg.init_std),
            self.dtype, name="self_attn",
        )(attn_norm(hidden) if pre_norm else hidden, attention_mask, deterministic=deterministic,
          init_cache=init_cache)
        hidden = hidden + drop(attn_out)
        if not pre_norm:
            hidden = attn_norm(hidden)
        x = mlp_norm(hidden) if pre_norm else hidden
        x = activation(cfg.activation_function)(_dense(cfg, cfg.ffn_dim, self.dtype, "fc1", cfg.enable_bias)(x))
        hidden = hidden + drop(_dense(cfg, cfg.hidden_size, self.dtype, "fc2", cfg.enable_bias)(x))
        if not pre_norm:
            hidden = mlp_norm(hidden)
        return hidden, weights if output_attentions else None, None


class FlaxOPTDecoder(nn.Module):
    config: OPTConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        init = nn.initializers.normal(cfg.init_std)
        self.embed_tokens = nn.Embed(cfg.vocab_size, cfg.word_embed_proj_dim, embedding_init=init, dtype=self.dtype)
        self.embed_positions = nn.Embed(cfg.max_position_embeddings + POSITION_OFFSET, cfg.hidden_size,
                                        embedding_init=init, dtype=self.dtype)
        if cfg.word_embed_proj_dim != cfg.hidden_size:
            self.project_in = _dense(cfg, cfg.hidden_size, self.dtype, "project_in", use_bias=False)
            self.project_out = _dense(cfg, cfg.word_embed_proj_dim, self.dtype, "project_out", use_bias=False)
        self.layers = LayerStack(
            FlaxOPTDecoderLayer, cfg.num_hidden_layers, {"config": cfg, "dtype": self.dtype},
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        )
        if cfg.final_layer_norm:
            self.final_layer_norm = _norm(cfg, self.dtype)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        cfg = self.config
        projected = cfg.word_embed_proj_dim != cfg.hidden_size
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
        hidden = self.embed_tokens(input_ids.astype("i4"))  # [B, T, P]
        if projected:
            hidden = self.project_in(hidden)  # [B, T, D]
        hidden = hidden + self.embed_positions(position_ids.astype("i4") + POSITION_OFFSET)
        hidden, all_hidden, attentions, _ = self.layers(
            hidden, (attention_mask,), deterministic, init_cache, output_attentions, output_hidden_states
        )
        if cfg.final_layer_norm:
            hidden = self.final_layer_norm(hidden)
        if projected:
            hidden = self.project_out(hidden)  # [B, T, P]
        return stack_output(hidden, all_hidden, attentions, output_hidden_states=output_hidden_states,
                            return_dict=return_dict)


class FlaxOPTModule(nn.Module):
    """The base model: the decoder under `decoder`, as in transformers."""

    config: OPTConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        self.decoder = FlaxOPTDecoder(self.config, self.dtype, self.gradient_checkpointing, self.remat_policy)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        return self.decoder(input_ids, attention_mask, position_ids, deterministic=deterministic,
                            init_cache=init_cache, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict)


class FlaxOPTForCausalLMModule(nn.Module):
    config: OPTConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.model = FlaxOPTModule(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg, cfg.vocab_size, self.dtype, "lm_head", use_bias=False)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, deterministic=True, init_cache=False,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        outputs = self.model(
            input_ids, attention_mask, position_ids, deterministic=deterministic, init_cache=init_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )
        hidden = outputs[0]  # [B, T, P]
        if self.config.tie_word_embeddings:
            logits = tied_logits(hidden, self.model.decoder.embed_tokens.embedding, self.dtype)  # [B, T, V]
        else:
            logits = self.lm_head(hidden)
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        # transformers 4.57's Flax OPT returns this class (same fields as a causal-LM output).
        return FlaxMaskedLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxOPTPreTrainedModel(FlaxPreTrainedModel):
    config_class = OPTConfig
    base_model_prefix = "model"
    _tied_weights_keys = {"lm_head.weight": "model.decoder.embed_tokens.weight"}

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        params: dict | None = None,
        past_key_values: dict | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        dropout_rng: jax.Array | None = None,
        deterministic: bool = True,
    ):
        if position_ids is None and past_key_values is None and attention_mask is not None:
            # transformers' default: positions count real tokens; padding sits at -1 (table row 1).
            mask = jnp.asarray(attention_mask, "i4")
            position_ids = jnp.cumsum(mask, axis=-1) * mask - 1
        inputs = self._token_inputs(input_ids, attention_mask, position_ids, past_key_values)
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=not deterministic,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


class FlaxOPTModel(FlaxOPTPreTrainedModel):
    module_class = FlaxOPTModule


class FlaxOPTForCausalLM(FlaxOPTPreTrainedModel):
    module_class = FlaxOPTForCausalLMModule
    is_causal_lm = True


__all__ = ["FlaxOPTModel", "FlaxOPTForCausalLM", "FlaxOPTPreTrainedModel"]

"""The BERT-style encoder, written once with transformers' param names, for every family built like it.

`attention/self/{query,key,value}`, `attention/output/{dense,LayerNorm}`, `intermediate/dense`,
`output/{dense,LayerNorm}` in `encoder/layer/{i}`, under `embeddings/...` and an optional pooler.
What a family changes is data (`EncoderLayout`): position scheme, segment embeddings, pre-LayerNorm
blocks, the pooler's form, and its own self-attention module (rotary, block-sparse) when it has one.
An optional decoder mode (`config.is_decoder`: causal self-attention with the static cache;
`config.add_cross_attention`: attention over encoder states) is the same blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.nn.attention import AttentionSpec, cross_attention, self_attention
from flaxformers.nn.embeddings import Embeddings
from flaxformers.nn.layers import activation, layer_norm
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import (
    FlaxBaseModelOutputWithPastAndCrossAttentions,
    FlaxBaseModelOutputWithPoolingAndCrossAttentions,
)

POOLER_KINDS = ("module", "dense", None)


@dataclass(frozen=True)
class EncoderLayout:
    """How an encoder family departs from BERT's layout, as data."""

    positions: str = "learned"  # the embeddings' positions: "learned", "sinusoidal" or "none" (rotary attention)
    token_types: bool = True  # segment embeddings
    padding_positions: bool = False  # positions count from pad_token_id + 1 over real tokens (fairseq's)
    embedding_dropout_first: bool = False  # dropout, then LayerNorm in the embeddings
    pre_norm: bool = False  # LayerNorm before attention and feed-forward, and one after the last block
    pooler: str | None = "module"  # "module": pooler/dense + tanh; "dense": pooler/kernel + tanh; None: no pooler
    self_attention: Any = None  # the family's self-attention module class (default: `EncoderSelfAttention`)

    def __post_init__(self) -> None:
        if self.pooler not in POOLER_KINDS:
            raise ValueError(f"EncoderLayout.pooler={self.pooler!r}; expected one of {POOLER_KINDS}.")


def dense(config: Any, features: int, dtype: jnp.dtype, name: str | None = None, use_bias: bool = True) -> nn.Dense:
    """transformers' Linear: normal(initializer_range) kernel, zero bias."""
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=nn.initializers.normal(config.initializer_range),
                    name=name)


def attention_spec(config: Any, causal: bool) -> AttentionSpec:
    head_dim = config.hidden_size // config.num_attention_heads
    return AttentionSpec(scale=1.0 / math.sqrt(head_dim), causal=causal,
                         dropout_rate=config.attention_probs_dropout_prob)


def bidirectional_attention(module: nn.Module, hidden: jax.Array, attention_mask: jax.Array, layer_head_mask: Any,
                            deterministic: bool, names: tuple[str, str, str]) -> tuple[jax.Array, jax.Array]:
    """Query/key/value Dense children `names` of the calling compact `module`, then the shared attention:
    [B, T, D] (heads merged, before any output projection) and weights [B, N, T, T]."""
    cfg = module.config
    n = cfg.num_attention_heads
    query, key, value = (dense(cfg, cfg.hidden_size, module.dtype, name)(hidden).reshape(*hidden.shape[:2], n, -1)
                         for name in names)  # [B, T, N, H]
    out, weights = self_attention(module, query, key, value, attention_spec(cfg, causal=False), attention_mask,
                                  head_mask=layer_head_mask, deterministic=deterministic)
    return out.reshape(hidden.shape[:2] + (cfg.hidden_size,)), weights


class EncoderSelfAttention(nn.Module):
    """Query/key/value projections; the attention itself (mask, cache, head mask) is the shared one.

    Families with positions in the attention subclass it and override `project` (rotary) or `attend`
    (another attention pattern).
    """

    config: Any
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    def project(self, hidden: jax.Array, source: jax.Array, position_ids: jax.Array | None
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Queries from `hidden`, keys and values from `source`, each [B, T|S, N, H]."""
        cfg = self.config
        n = cfg.num_attention_heads
        use_bias = getattr(cfg, "use_bias", True)
        heads = lambda x: x.reshape(*x.shape[:2], n, cfg.hidden_size // n)  # noqa: E731
        return tuple(heads(dense(cfg, cfg.hidden_size, self.dtype, name, use_bias)(x))
                     for name, x in (("query", hidden), ("key", source), ("value", source)))

    def attend(self, query, key, value, attention_mask, layer_head_mask, cross, init_cache, deterministic
               ) -> tuple[jax.Array, jax.Array]:
        """[B, T, N, H] output and [B, N, T, S] weights (families with another attention pattern override it)."""
        spec = attention_spec(self.config, self.causal)
        if cross:
            return cross_attention(self, query, key, value, spec, attention_mask, head_mask=layer_head_mask,
                                   deterministic=deterministic)
        return self_attention(self, query, key, value, spec, attention_mask, init_cache=init_cache,
                              head_mask=layer_head_mask, deterministic=deterministic)

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids=None, layer_head_mask=None, key_value_states=None,
                 init_cache=False, deterministic=True):
        source = hidden if key_value_states is None else key_value_states
        query, key, value = self.project(hidden, source, position_ids)
        out, weights = self.attend(query, key, value, attention_mask, layer_head_mask, key_value_states is not None,
                                   init_cache, deterministic)
        return out.reshape(*out.shape[:2], self.config.hidden_size), weights  # [B, T, D], [B, N, T, S]


class ResidualOutput(nn.Module):
    """dense, dropout, + residual, LayerNorm (`attention/output` and the block's `output`); pre-norm blocks
    normalise at their input instead, so they skip the LayerNorm here."""

    config: Any
    pre_norm: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, residual, deterministic: bool = True):
        cfg = self.config
        hidden = dense(cfg, cfg.hidden_size, self.dtype, "dense")(hidden)
        hidden = nn.Dropout(cfg.hidden_dropout_prob)(hidden, deterministic=deterministic) + residual
        return hidden if self.pre_norm else layer_norm(cfg.layer_norm_eps, self.dtype, "LayerNorm")(hidden)


class EncoderAttention(nn.Module):
    config: Any
    layout: EncoderLayout
    causal: bool = False
    cross: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids=None, layer_head_mask=None, key_value_states=None,
                 init_cache=False, deterministic=True):
        cfg = self.config
        attention_cls = EncoderSelfAttention if self.cross else (self.layout.self_attention or EncoderSelfAttention)
        normed = layer_norm(cfg.layer_norm_eps, self.dtype, "LayerNorm")(hidden) if self.layout.pre_norm else hidden
        out, weights = attention_cls(cfg, self.causal, self.dtype, name="self")(
            normed, attention_mask, position_ids, layer_head_mask, key_value_states, init_cache, deterministic
        )
        out = ResidualOutput(cfg, self.layout.pre_norm, self.dtype, name="output")(out, hidden, deterministic)
        return out, weights


class Intermediate(nn.Module):
    config: Any
    pre_norm: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        if self.pre_norm:
            hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "LayerNorm")(hidden)
        return activation(cfg.hidden_act)(dense(cfg, cfg.intermediate_size, self.dtype, "dense")(hidden))


class EncoderLayer(nn.Module):
    """One block, called by `LayerStack`."""

    config: Any
    layout: EncoderLayout
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids, head_mask, encoder_hidden_states, encoder_attention_mask,
                 deterministic=True, init_cache=False, output_attentions=False):
        cfg, layout = self.config, self.layout
        layer_head_mask = None if head_mask is None else head_mask[self.layer_idx]  # [N]
        hidden, self_weights = EncoderAttention(cfg, layout, causal=cfg.is_decoder, dtype=self.dtype,
                                                name="attention")(
            hidden, attention_mask, position_ids, layer_head_mask, init_cache=init_cache, deterministic=deterministic
        )
        cross_weights = None
        if encoder_hidden_states is not None:
            # transformers 4.x Flax applies the layer's head mask to the cross-attention too.
            hidden, cross_weights = EncoderAttention(cfg, layout, cross=True, dtype=self.dtype, name="crossattention")(
                hidden, encoder_attention_mask, None, layer_head_mask, key_value_states=encoder_hidden_states,
                deterministic=deterministic,
            )
        out = Intermediate(cfg, layout.pre_norm, self.dtype, name="intermediate")(hidden)
        out = ResidualOutput(cfg, layout.pre_norm, self.dtype, name="output")(out, hidden, deterministic)
        if not output_attentions:
            self_weights = cross_weights = None
        return out, self_weights, cross_weights


def check_head_mask_scan(config: Any, head_mask: Any) -> None:
    if head_mask is not None and getattr(config, "scan_layers", False):
        raise ValueError("head_mask needs per-layer blocks, but config.scan_layers=True shares one block trace across "
                         "layers; set config.scan_layers=False to use head_mask.")


class Encoder(nn.Module):
    config: Any
    layout: EncoderLayout
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, hidden, attention_mask, position_ids=None, head_mask=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, init_cache=False, deterministic=True, output_attentions=False,
                 output_hidden_states=False):
        cfg = self.config
        check_head_mask_scan(cfg, head_mask)
        layers = LayerStack(EncoderLayer, cfg.num_hidden_layers, {"config": cfg, "layout": self.layout, "dtype": self.dtype},
                            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                            name="layer")
        hidden, all_hidden, attentions, cross = layers(
            hidden, (attention_mask, position_ids, head_mask, encoder_hidden_states, encoder_attention_mask),
            deterministic, init_cache, output_attentions, output_hidden_states,
        )
        if output_hidden_states:
            all_hidden = all_hidden + (hidden,)
        return FlaxBaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden, hidden_states=all_hidden, attentions=attentions, cross_attentions=cross
        )


class Pooler(nn.Module):
    """tanh(dense(first token)) with the dense layer as a child `dense`."""

    config: Any
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        return jnp.tanh(dense(self.config, self.config.hidden_size, self.dtype, "dense")(hidden[:, 0]))  # [B, D]


class EncoderModel(nn.Module):
    """Embeddings (-> `embeddings_project` when embedding_size != hidden_size) -> encoder (-> LayerNorm for
    pre-norm layouts) -> pooler. A family subclasses it with its `layout`."""

    config: Any
    dtype: jnp.dtype = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    layout: ClassVar[EncoderLayout] = EncoderLayout()

    def setup(self):
        cfg, layout = self.config, self.layout
        features = getattr(cfg, "embedding_size", None) or cfg.hidden_size
        self.embeddings = Embeddings(
            cfg, self.dtype, features=features, positions=layout.positions, token_types=layout.token_types,
            dropout_first=layout.embedding_dropout_first, padding_positions=layout.padding_positions,
            scale=math.sqrt(cfg.hidden_size) if getattr(cfg, "rescale_embeddings", False) else 1.0,
        )
        if features != cfg.hidden_size:
            self.embeddings_project = dense(cfg, cfg.hidden_size, self.dtype)
        self.encoder = Encoder(cfg, layout, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if layout.pre_norm:
            self.LayerNorm = layer_norm(cfg.layer_norm_eps, self.dtype)
        if self.add_pooling_layer and layout.pooler == "module":
            self.pooler = Pooler(cfg, self.dtype)
        elif self.add_pooling_layer and layout.pooler == "dense":
            self.pooler = dense(cfg, cfg.hidden_size, self.dtype)

    @property
    def has_pooler(self) -> bool:
        return self.add_pooling_layer and self.layout.pooler is not None

    def embed(self, input_ids, token_type_ids, position_ids, deterministic):
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, deterministic=deterministic)
        return self.embeddings_project(hidden) if hasattr(self, "embeddings_project") else hidden

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache=False, deterministic=True,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        if attention_mask is None:
            attention_mask = jnp.ones_like(input_ids)
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[-1]), input_ids.shape)
        if encoder_hidden_states is not None and not self.config.add_cross_attention:
            raise ValueError("encoder_hidden_states were passed, but this model has no cross-attention layers: "
                             "set config.add_cross_attention=True.")
        hidden = self.embed(input_ids, token_type_ids, position_ids, deterministic)
        outputs = self.encoder(
            hidden, attention_mask, position_ids, head_mask, encoder_hidden_states, encoder_attention_mask,
            init_cache=init_cache, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        hidden, all_hidden = outputs.last_hidden_state, outputs.hidden_states
        if self.layout.pre_norm:  # the last hidden state is normalised, also as hidden_states[-1] (transformers 5)
            hidden = self.LayerNorm(hidden)
            all_hidden = None if all_hidden is None else all_hidden[:-1] + (hidden,)
        pooled = None
        if self.has_pooler:
            pooled = self.pooler(hidden) if self.layout.pooler == "module" else jnp.tanh(self.pooler(hidden[:, 0]))
        out = FlaxBaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden,
            attentions=outputs.attentions, cross_attentions=outputs.cross_attentions,
        )
        return out if return_dict else out.to_tuple()

    def word_embeddings(self) -> jax.Array:
        return self.embeddings.variables["params"]["word_embeddings"]["embedding"]  # [V, E]


__all__ = [
    "Encoder", "EncoderAttention", "EncoderLayer", "EncoderLayout", "EncoderModel", "EncoderSelfAttention",
    "Intermediate", "Pooler", "ResidualOutput", "attention_spec", "bidirectional_attention", "check_head_mask_scan",
    "dense",
]

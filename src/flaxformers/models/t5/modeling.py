"""T5 and mT5 in Flax: FlaxT5Model, FlaxT5ForConditionalGeneration, FlaxT5EncoderModel (and the mT5
names), with transformers 4.x Flax's param names.

What is T5's own: RMS layer norms without bias, unscaled attention with a bucketed relative position
bias that the first layer of each stack computes and the others reuse, plain or gated feed-forward
blocks, and the decoder output scaled by d_model ** -0.5 before a tied vocabulary projection.
Param paths: `shared/embedding`, `encoder/block/0/layer/0/SelfAttention/q/kernel`,
`encoder/block/0/layer/0/SelfAttention/relative_attention_bias/embedding`,
`decoder/block/0/layer/1/EncDecAttention/...`, `encoder/final_layer_norm/weight`, `lm_head/kernel`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_seq2seq import Seq2SeqPreTrainedModel
from flaxformers.models.t5.configuration import MT5Config, T5Config
from flaxformers.nn.attention import (
    AttentionSpec,
    cache_window,
    cross_attention,
    encoder_key_value,
    self_attention,
)
from flaxformers.nn.layers import RMSNorm, activation, tied_logits
from flaxformers.nn.position_bias import bias_from_buckets, relative_position_buckets
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import (
    FlaxBaseModelOutput,
    FlaxBaseModelOutputWithPastAndCrossAttentions,
    FlaxCausalLMOutputWithCrossAttentions,
    FlaxSeq2SeqLMOutput,
    FlaxSeq2SeqModelOutput,
    stack_output,
)


def _dense(features: int, std: float, dtype: jnp.dtype, name: str) -> nn.Dense:
    return nn.Dense(features, use_bias=False, kernel_init=nn.initializers.normal(std), dtype=dtype, name=name)


def _norm(cfg: T5Config, dtype: jnp.dtype, name: str) -> RMSNorm:
    return RMSNorm(epsilon=cfg.layer_norm_epsilon, dtype=dtype, name=name)


# --- attention -----------------------------------------------------------------------------------
class FlaxT5Attention(nn.Module):
    """Self-attention (with the relative position bias) or cross-attention over encoder states."""

    config: T5Config
    has_relative_attention_bias: bool = False
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    def relative_bias(self, query_len: int, key_len: int, query_offset: Any) -> jax.Array:
        """[1, N, T, S] from this layer's table: bidirectional in the encoder, backwards only in the decoder."""
        cfg = self.config
        table = nn.Embed(cfg.relative_attention_num_buckets, cfg.num_heads,
                         embedding_init=nn.initializers.normal(cfg.initializer_factor * (cfg.num_heads * cfg.d_kv) ** -0.5),
                         dtype=self.dtype, name="relative_attention_bias")
        buckets = relative_position_buckets(
            query_len, key_len, query_offset, bidirectional=not self.causal,
            num_buckets=cfg.relative_attention_num_buckets, max_distance=cfg.relative_attention_max_distance,
        )
        return bias_from_buckets(table.embedding, buckets)

    @nn.compact
    def __call__(self, hidden, attention_mask, key_value_states=None, position_bias=None, init_cache=False,
                 deterministic=True):
        cfg = self.config
        n, h = cfg.num_heads, cfg.d_kv
        std = cfg.initializer_factor * (n * h) ** -0.5
        heads = lambda x: x.reshape(*x.shape[:2], n, h)  # noqa: E731  [B, T, N, H]
        # Mesh TensorFlow's initialisation folds the 1/sqrt(H) scale into the query weights: no scale here.
        spec = AttentionSpec(scale=1.0, causal=self.causal, dropout_rate=cfg.dropout_rate)
        query = heads(_dense(n * h, std * h ** -0.5, self.dtype, "q")(hidden))
        key_proj, value_proj = _dense(n * h, std, self.dtype, "k"), _dense(n * h, std, self.dtype, "v")
        if key_value_states is None:
            if position_bias is None:
                offset, key_len = cache_window(self, hidden.shape[1])
                if self.has_relative_attention_bias:
                    position_bias = self.relative_bias(hidden.shape[1], key_len, offset)
                else:
                    position_bias = jnp.zeros((1, n, hidden.shape[1], key_len), self.dtype)
            out, weights = self_attention(self, query, heads(key_proj(hidden)), heads(value_proj(hidden)), spec,
                                          attention_mask, init_cache=init_cache, bias_fn=lambda _: position_bias,
                                          deterministic=deterministic)
        else:
            key, value = encoder_key_value(self, key_value_states,
                                           lambda s: (heads(key_proj(s)), heads(value_proj(s))), init_cache)
            out, weights = cross_attention(self, query, key, value, spec, attention_mask, deterministic=deterministic)
        out = _dense(cfg.d_model, std, self.dtype, "o")(out.reshape(*out.shape[:2], n * h))  # [B, T, D]
        return out, weights, position_bias


class FlaxT5LayerSelfAttention(nn.Module):
    config: T5Config
    has_relative_attention_bias: bool = False
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, position_bias=None, init_cache=False, deterministic=True):
        out, weights, position_bias = FlaxT5Attention(
            self.config, self.has_relative_attention_bias, self.causal, self.dtype, name="SelfAttention"
        )(_norm(self.config, self.dtype, "layer_norm")(hidden), attention_mask, position_bias=position_bias,
          init_cache=init_cache, deterministic=deterministic)
        hidden = hidden + nn.Dropout(self.config.dropout_rate)(out, deterministic=deterministic)
        return hidden, weights, position_bias


class FlaxT5LayerCrossAttention(nn.Module):
    config: T5Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, encoder_hidden_states, encoder_attention_mask, init_cache=False, deterministic=True):
        out, weights, _ = FlaxT5Attention(self.config, dtype=self.dtype, name="EncDecAttention")(
            _norm(self.config, self.dtype, "layer_norm")(hidden), encoder_attention_mask,
            key_value_states=encoder_hidden_states, init_cache=init_cache, deterministic=deterministic,
        )
        return hidden + nn.Dropout(self.config.dropout_rate)(out, deterministic=deterministic), weights


class FlaxT5DenseReluDense(nn.Module):
    """`wi` -> activation -> `wo`, or gated: activation(`wi_0`) * `wi_1` -> `wo`."""

    config: T5Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic=True):
        cfg = self.config
        std_in, std_out = cfg.initializer_factor * cfg.d_model ** -0.5, cfg.initializer_factor * cfg.d_ff ** -0.5
        act = activation(cfg.dense_act_fn)
        if cfg.is_gated_act:
            hidden = act(_dense(cfg.d_ff, std_in, self.dtype, "wi_0")(hidden)) * _dense(
                cfg.d_ff, std_in, self.dtype, "wi_1")(hidden)
        else:
            hidden = act(_dense(cfg.d_ff, std_in, self.dtype, "wi")(hidden))
        hidden = nn.Dropout(cfg.dropout_rate)(hidden, deterministic=deterministic)
        return _dense(cfg.d_model, std_out, self.dtype, "wo")(hidden)


class FlaxT5LayerFF(nn.Module):
    config: T5Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic=True):
        out = FlaxT5DenseReluDense(self.config, self.dtype, name="DenseReluDense")(
            _norm(self.config, self.dtype, "layer_norm")(hidden), deterministic=deterministic)
        return hidden + nn.Dropout(self.config.dropout_rate)(out, deterministic=deterministic)


class FlaxT5Block(nn.Module):
    """Self-attention `0`, cross-attention `1` (decoder), feed-forward last."""

    config: T5Config
    has_relative_attention_bias: bool = False
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    def self_attention_layer(self) -> nn.Module:
        """Sublayer `0` (LongT5's encoder puts its local or transient-global attention here)."""
        return FlaxT5LayerSelfAttention(self.config, self.has_relative_attention_bias, self.causal, self.dtype,
                                        name="0")

    @nn.compact
    def __call__(self, hidden, attention_mask, encoder_hidden_states, encoder_attention_mask, position_bias,
                 deterministic, init_cache):
        cfg = self.config
        hidden, self_weights, position_bias = self.self_attention_layer()(
            hidden, attention_mask, position_bias, init_cache, deterministic)
        cross_weights = None
        if self.causal and encoder_hidden_states is not None:
            hidden, cross_weights = FlaxT5LayerCrossAttention(cfg, self.dtype, name="1")(
                hidden, encoder_hidden_states, encoder_attention_mask, init_cache, deterministic)
        hidden = FlaxT5LayerFF(cfg, self.dtype, name="2" if self.causal else "1")(hidden, deterministic)
        return hidden, self_weights, cross_weights, position_bias


class FlaxT5LayerCollection(nn.Module):
    """Block i of a stack (`block/{i}/layer/...`), called by `LayerStack`; returns the position bias so
    that the blocks after the first reuse it."""

    config: T5Config
    causal: bool = False
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0
    block_cls: ClassVar[type[nn.Module]] = FlaxT5Block

    @staticmethod
    def layer_kind(config: T5Config, layer_idx: int) -> bool:
        return layer_idx == 0  # only the first block owns the relative position table

    @nn.compact
    def __call__(self, hidden, attention_mask, encoder_hidden_states, encoder_attention_mask, position_bias,
                 deterministic=True, init_cache=False, output_attentions=False):
        hidden, self_weights, cross_weights, position_bias = self.block_cls(
            self.config, self.layer_idx == 0, self.causal, self.dtype, name="layer"
        )(hidden, attention_mask, encoder_hidden_states, encoder_attention_mask, position_bias, deterministic,
          init_cache)
        if not output_attentions:
            self_weights = cross_weights = None
        return hidden, self_weights, cross_weights, position_bias


class FlaxT5Stack(nn.Module):
    config: T5Config
    embed_tokens: nn.Module
    causal: bool = False
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    collection_cls: ClassVar[type[nn.Module]] = FlaxT5LayerCollection

    @nn.compact
    def __call__(self, input_ids, attention_mask, encoder_hidden_states=None, encoder_attention_mask=None,
                 init_cache=False, output_attentions=False, output_hidden_states=False, return_dict=True,
                 deterministic=True):
        cfg = self.config
        dropout = nn.Dropout(cfg.dropout_rate)
        hidden = dropout(self.embed_tokens(input_ids.astype("i4")), deterministic=deterministic)  # [B, T, D]
        num_layers = cfg.num_decoder_layers if self.causal else cfg.num_layers
        blocks = LayerStack(self.collection_cls, num_layers,
                            {"config": cfg, "causal": self.causal, "dtype": self.dtype},
                            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                            name="block")
        hidden, all_hidden, attentions, cross = blocks(
            hidden, (attention_mask, encoder_hidden_states, encoder_attention_mask, None),
            deterministic, init_cache, output_attentions, output_hidden_states,
        )
        hidden = dropout(_norm(cfg, self.dtype, "final_layer_norm")(hidden), deterministic=deterministic)
        output_type = FlaxBaseModelOutputWithPastAndCrossAttentions if self.causal else FlaxBaseModelOutput
        return stack_output(hidden, all_hidden, attentions, cross, output_hidden_states=output_hidden_states,
                            return_dict=return_dict, output_type=output_type)


# --- modules -------------------------------------------------------------------------------------
class FlaxT5EncoderModule(nn.Module):
    config: T5Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    stack_cls: ClassVar[type[nn.Module]] = FlaxT5Stack  # the encoder's (LongT5: local attention)

    def setup(self):
        cfg = self.config
        self.shared = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=self.dtype,
                               embedding_init=nn.initializers.normal(cfg.initializer_factor))
        self.encoder = self.stack_cls(cfg, self.shared, causal=False, dtype=self.dtype,
                                   gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy)

    def encode(self, input_ids, attention_mask, position_ids=None, output_attentions=False,
               output_hidden_states=False, return_dict=True, deterministic=True):
        return self.encoder(input_ids, attention_mask, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict,
                            deterministic=deterministic)

    def __call__(self, input_ids, attention_mask, output_attentions=False, output_hidden_states=False,
                 return_dict=True, deterministic=True):
        return self.encode(input_ids, attention_mask, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=return_dict,
                           deterministic=deterministic)


class FlaxT5Module(FlaxT5EncoderModule):
    """The encoder-decoder: `shared`, `encoder`, `decoder`."""

    def setup(self):
        super().setup()
        self.decoder = FlaxT5Stack(self.config, self.shared, causal=True, dtype=self.dtype,
                                   gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy)

    def decode_states(self, decoder_input_ids, decoder_attention_mask, decoder_position_ids=None,
                      encoder_hidden_states=None, encoder_attention_mask=None, init_cache=False,
                      output_attentions=False, output_hidden_states=False, return_dict=True, deterministic=True):
        """The decoder's outputs (heads that predict tokens turn them into logits in `decode`)."""
        # relative positions only: a decoder token's position is its cache slot
        return self.decoder(decoder_input_ids, decoder_attention_mask, encoder_hidden_states, encoder_attention_mask,
                            init_cache=init_cache, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict,
                            deterministic=deterministic)

    def decode(self, *args, **kwargs):
        return self.decode_states(*args, **kwargs)

    def head(self, decoder_outputs, encoder_outputs, return_dict):
        if not return_dict:
            return decoder_outputs + encoder_outputs
        return FlaxSeq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )

    def __call__(self, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, position_ids=None,
                 decoder_position_ids=None, output_attentions=False, output_hidden_states=False, return_dict=True,
                 deterministic=True):
        flags = dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                     return_dict=return_dict, deterministic=deterministic)
        encoder_outputs = self.encode(input_ids, attention_mask, **flags)
        decoder_outputs = self.decode_states(decoder_input_ids, decoder_attention_mask, None, encoder_outputs[0],
                                             attention_mask, **flags)
        return self.head(decoder_outputs, encoder_outputs, return_dict)


class FlaxT5ForConditionalGenerationModule(FlaxT5Module):
    """Logits against the shared embedding (tied, read in place) or an own `lm_head`."""

    def setup(self):
        super().setup()
        cfg = self.config
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg.vocab_size, cfg.initializer_factor, self.dtype, "lm_head")

    def logits(self, hidden):
        cfg = self.config
        if cfg.scale_decoder_outputs:
            hidden = hidden * cfg.d_model ** -0.5
        if cfg.tie_word_embeddings:
            return tied_logits(hidden, self.shared.embedding, self.dtype)  # [B, T, V]
        return self.lm_head(hidden)

    def decode(self, *args, return_dict=True, **kwargs):
        outputs = self.decode_states(*args, return_dict=return_dict, **kwargs)
        logits = self.logits(outputs[0])
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutputWithCrossAttentions(logits=logits, hidden_states=outputs.hidden_states,
                                                     attentions=outputs.attentions,
                                                     cross_attentions=outputs.cross_attentions)

    def head(self, decoder_outputs, encoder_outputs, return_dict):
        logits = self.logits(decoder_outputs[0])
        if not return_dict:
            return (logits,) + tuple(decoder_outputs[1:]) + tuple(encoder_outputs)
        return FlaxSeq2SeqLMOutput(
            logits=logits,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


# --- the model classes ---------------------------------------------------------------------------
class FlaxT5PreTrainedModel(Seq2SeqPreTrainedModel):
    config_class = T5Config
    base_model_prefix = "transformer"
    takes_position_ids = False
    shifts_input_ids = False
    # the encoder's and decoder's copies of the shared embedding in PyTorch checkpoints
    _keys_to_ignore_on_load_unexpected = (r"(^|\.)(encoder|decoder)\.embed_tokens\.weight$",)
    _tied_weights_keys = {"lm_head.weight": "shared.weight"}

    def __init__(self, config: T5Config, input_shape: tuple[int, ...] = (1, 1), seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, gradient_checkpointing: bool = False,
                 **kwargs: Any):
        super().__init__(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=_do_init, **kwargs)
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()

    # transformers 4.57's T5 signatures: no position ids
    def encode(self, input_ids, attention_mask=None, output_attentions: bool | None = None,
               output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
               params: dict | None = None, dropout_rng: jax.Array | None = None):
        return super().encode(input_ids, attention_mask, None, output_attentions, output_hidden_states, return_dict,
                              train, params, dropout_rng)

    def decode(self, decoder_input_ids, encoder_outputs, encoder_attention_mask=None, decoder_attention_mask=None,
               past_key_values: dict | None = None, output_attentions: bool | None = None,
               output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
               params: dict | None = None, dropout_rng: jax.Array | None = None):
        return super().decode(decoder_input_ids, encoder_outputs, encoder_attention_mask, decoder_attention_mask,
                              None, past_key_values, output_attentions, output_hidden_states, return_dict, train,
                              params, dropout_rng)

    def __call__(self, input_ids, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                 output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                 return_dict: bool | None = None, train: bool = False, params: dict | None = None,
                 dropout_rng: jax.Array | None = None):
        return super().__call__(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, None, None,
                                output_attentions, output_hidden_states, return_dict, train, params, dropout_rng)


class FlaxT5Model(FlaxT5PreTrainedModel):
    module_class = FlaxT5Module


class FlaxT5ForConditionalGeneration(FlaxT5PreTrainedModel):
    module_class = FlaxT5ForConditionalGenerationModule
    is_seq2seq_lm = True


class FlaxT5EncoderModel(FlaxT5PreTrainedModel):
    module_class = FlaxT5EncoderModule
    _keys_to_ignore_on_load_unexpected = FlaxT5PreTrainedModel._keys_to_ignore_on_load_unexpected + (
        r"^decoder\.", r"^lm_head\.")

    def dummy_inputs(self, input_shape):
        return self._encoder_inputs(jnp.zeros(input_shape, dtype="i4"))

    def __call__(self, input_ids, attention_mask=None, output_attentions: bool | None = None,
                 output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
                 params: dict | None = None, dropout_rng: jax.Array | None = None):
        return self._apply(
            self._encoder_inputs(input_ids, attention_mask), params=params, past_key_values=None,
            dropout_rng=dropout_rng, train=train, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


# --- mT5: T5 under MT5Config and its own names --------------------------------------------------------
class FlaxMT5PreTrainedModel(FlaxT5PreTrainedModel):
    config_class = MT5Config


class FlaxMT5Model(FlaxMT5PreTrainedModel, FlaxT5Model):
    pass


class FlaxMT5ForConditionalGeneration(FlaxMT5PreTrainedModel, FlaxT5ForConditionalGeneration):
    pass


class FlaxMT5EncoderModel(FlaxMT5PreTrainedModel, FlaxT5EncoderModel):
    pass

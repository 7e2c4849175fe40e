"""The BART-like encoder-decoder in Flax, with transformers 4.x Flax's param names.

BART, mBART, Marian, Pegasus, Blenderbot and BlenderbotSmall are this one transformer: their config
classes carry an `Architecture` (pre- or post-norm, final layer norms, the embedding layer norm,
learned or sinusoidal positions and their offset), and their packages declare thin subclasses of the
model classes here. Param paths: `model/shared/embedding`,
`model/encoder/layers/0/self_attn/q_proj/kernel`, `model/decoder/layers/0/encoder_attn/...`,
`lm_head/kernel` (untied heads) and `final_logits_bias`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.modeling_seq2seq import Seq2SeqPreTrainedModel
from flaxformers.modeling_utils import FlaxCrossAttendingDecoderModel
from flaxformers.models.bart.configuration import BartConfig
from flaxformers.nn.attention import AttentionSpec, cross_attention, encoder_key_value, self_attention
from flaxformers.nn.layers import activation, layer_norm, sinusoidal_positions, tied_logits
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import (
    FlaxBaseModelOutput,
    FlaxBaseModelOutputWithPastAndCrossAttentions,
    FlaxCausalLMOutputWithCrossAttentions,
    FlaxSeq2SeqLMOutput,
    FlaxSeq2SeqModelOutput,
    FlaxSeq2SeqQuestionAnsweringModelOutput,
    FlaxSeq2SeqSequenceClassifierOutput,
    stack_output,
)

LN_EPS = 1e-5  # every LayerNorm of these models


def _dense(cfg: BartConfig, features: int, dtype: jnp.dtype, name: str, use_bias: bool = True) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=nn.initializers.normal(cfg.init_std),
                    name=name)


def _embed(cfg: BartConfig, rows: int, dtype: jnp.dtype, name: str | None = None) -> nn.Embed:
    return nn.Embed(rows, cfg.d_model, embedding_init=nn.initializers.normal(cfg.init_std), dtype=dtype, name=name)


# --- layers --------------------------------------------------------------------------------------
class FlaxBartAttention(nn.Module):
    """Projections around the shared attention: causal self-attention with the static cache, or
    cross-attention whose keys and values may come from the cache."""

    config: BartConfig
    num_heads: int
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, key_value_states=None, init_cache=False, deterministic=True):
        cfg = self.config
        d, n = cfg.d_model, self.num_heads
        spec = AttentionSpec(scale=(d // n) ** -0.5, causal=self.causal, dropout_rate=cfg.attention_dropout)
        heads = lambda x: x.reshape(*x.shape[:2], n, d // n)  # noqa: E731  [B, T, N, H]
        key_proj = _dense(cfg, d, self.dtype, "k_proj", use_bias=cfg.architecture.key_bias)
        value_proj = _dense(cfg, d, self.dtype, "v_proj")
        query = heads(_dense(cfg, d, self.dtype, "q_proj")(hidden))
        if key_value_states is None:
            out, weights = self_attention(self, query, heads(key_proj(hidden)), heads(value_proj(hidden)), spec,
                                          attention_mask, init_cache=init_cache, deterministic=deterministic)
        else:
            key, value = encoder_key_value(self, key_value_states,
                                           lambda s: (heads(key_proj(s)), heads(value_proj(s))), init_cache)
            out, weights = cross_attention(self, query, key, value, spec, attention_mask, deterministic=deterministic)
        return _dense(cfg, d, self.dtype, "out_proj")(out.reshape(*out.shape[:2], d)), weights  # [B, T, D]


class FlaxBartLayer(nn.Module):
    """One encoder layer, or a decoder layer (causal self-attention, then cross-attention)."""

    config: BartConfig
    dtype: jnp.dtype = jnp.float32
    decoder: bool = False
    layer_idx: int = 0

    def _sublayer(self, hidden, name: str, run, deterministic: bool):
        """`run` on the normalised (pre-norm) or raw (post-norm) input, dropout, residual, post-norm."""
        norm = layer_norm(LN_EPS, self.dtype, name)
        pre_norm = self.config.architecture.pre_norm
        out, weights = run(norm(hidden) if pre_norm else hidden)
        hidden = hidden + nn.Dropout(self.config.dropout)(out, deterministic=deterministic)
        return (hidden if pre_norm else norm(hidden)), weights

    @nn.compact
    def __call__(self, hidden, attention_mask, encoder_hidden_states, encoder_attention_mask,
                 deterministic=True, init_cache=False, output_attentions=False):
        cfg = self.config
        side = "decoder" if self.decoder else "encoder"
        heads, ffn = getattr(cfg, f"{side}_attention_heads"), getattr(cfg, f"{side}_ffn_dim")
        self_attn = FlaxBartAttention(cfg, heads, causal=self.decoder, dtype=self.dtype, name="self_attn")
        hidden, self_weights = self._sublayer(
            hidden, "self_attn_layer_norm",
            lambda x: self_attn(x, attention_mask, init_cache=init_cache, deterministic=deterministic), deterministic)
        cross_weights = None
        if encoder_hidden_states is not None:
            cross_attn = FlaxBartAttention(cfg, heads, dtype=self.dtype, name="encoder_attn")
            hidden, cross_weights = self._sublayer(
                hidden, "encoder_attn_layer_norm",
                lambda x: cross_attn(x, encoder_attention_mask, encoder_hidden_states, init_cache, deterministic),
                deterministic)

        def feed_forward(x):
            x = activation(cfg.activation_function)(_dense(cfg, ffn, self.dtype, "fc1")(x))
            x = nn.Dropout(cfg.activation_dropout)(x, deterministic=deterministic)
            return _dense(cfg, cfg.d_model, self.dtype, "fc2")(x), None

        hidden, _ = self._sublayer(hidden, "final_layer_norm", feed_forward, deterministic)
        if not output_attentions:
            self_weights = cross_weights = None
        return hidden, self_weights, cross_weights


# --- the stacks ----------------------------------------------------------------------------------
class FlaxBartStack(nn.Module):
    """Embeddings, layers and the optional final norm of the encoder (`decoder=False`) or decoder."""

    config: BartConfig
    embed_tokens: nn.Module  # the shared token embedding
    dtype: jnp.dtype = jnp.float32
    decoder: bool = False
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def _positions(self, position_ids):
        cfg, arch = self.config, self.config.architecture
        if arch.sinusoidal_positions:  # fixed: no param
            table = jnp.asarray(sinusoidal_positions(cfg.max_position_embeddings, cfg.d_model))
            return jnp.take(table, position_ids, axis=0).astype(self.dtype)
        rows = cfg.max_position_embeddings + arch.position_offset
        return _embed(cfg, rows, self.dtype, "embed_positions")(position_ids + arch.position_offset)

    @nn.compact
    def __call__(self, input_ids, attention_mask, position_ids, encoder_hidden_states=None,
                 encoder_attention_mask=None, init_cache=False, output_attentions=False, output_hidden_states=False,
                 return_dict=True, deterministic=True):
        cfg, arch = self.config, self.config.architecture
        scale = float(np.sqrt(cfg.d_model)) if cfg.scale_embedding else 1.0
        tokens = self.embed_tokens(input_ids.astype("i4")) * scale  # [B, T, D]
        positions = self._positions(position_ids.astype("i4"))
        if arch.layernorm_embedding:
            norm = layer_norm(LN_EPS, self.dtype, "layernorm_embedding")
            if self.decoder and arch.decoder_norm_before_positions:
                hidden = norm(tokens) + positions
            else:
                hidden = norm(tokens + positions)
        else:
            hidden = tokens + positions
        hidden = nn.Dropout(cfg.dropout)(hidden, deterministic=deterministic)
        side = "decoder" if self.decoder else "encoder"
        layers = LayerStack(FlaxBartLayer, getattr(cfg, f"{side}_layers"),
                            {"config": cfg, "dtype": self.dtype, "decoder": self.decoder},
                            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                            name="layers")
        hidden, all_hidden, attentions, cross = layers(
            hidden, (attention_mask, encoder_hidden_states, encoder_attention_mask),
            deterministic, init_cache, output_attentions, output_hidden_states,
        )
        if arch.final_layer_norm:
            hidden = layer_norm(LN_EPS, self.dtype, "layer_norm")(hidden)
        output_type = FlaxBaseModelOutputWithPastAndCrossAttentions if self.decoder else FlaxBaseModelOutput
        return stack_output(hidden, all_hidden, attentions, cross, output_hidden_states=output_hidden_states,
                            return_dict=return_dict, output_type=output_type)


class FlaxBartModule(nn.Module):
    config: BartConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.shared = _embed(cfg, cfg.vocab_size, self.dtype)
        stack = dict(dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing,
                     remat_policy=self.remat_policy)
        self.encoder = FlaxBartStack(cfg, self.shared, decoder=False, **stack)
        self.decoder = FlaxBartStack(cfg, self.shared, decoder=True, **stack)

    def encode(self, input_ids, attention_mask, position_ids=None, output_attentions=False,
               output_hidden_states=False, return_dict=True, deterministic=True):
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[-1]), input_ids.shape)
        return self.encoder(input_ids, attention_mask, position_ids, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict,
                            deterministic=deterministic)

    def decode(self, decoder_input_ids, decoder_attention_mask, decoder_position_ids=None, encoder_hidden_states=None,
               encoder_attention_mask=None, init_cache=False, output_attentions=False, output_hidden_states=False,
               return_dict=True, deterministic=True):
        if decoder_position_ids is None:
            decoder_position_ids = jnp.broadcast_to(jnp.arange(decoder_input_ids.shape[-1]), decoder_input_ids.shape)
        return self.decoder(decoder_input_ids, decoder_attention_mask, decoder_position_ids, encoder_hidden_states,
                            encoder_attention_mask, init_cache=init_cache, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict,
                            deterministic=deterministic)

    def __call__(self, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, position_ids=None,
                 decoder_position_ids=None, output_attentions=False, output_hidden_states=False, return_dict=True,
                 deterministic=True):
        flags = dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                     return_dict=return_dict, deterministic=deterministic)
        encoder_outputs = self.encode(input_ids, attention_mask, position_ids, **flags)
        decoder_outputs = self.decode(decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                                      encoder_outputs[0], attention_mask, **flags)
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


def seq2seq_output(output_cls: type, head: dict[str, jax.Array], outputs: Any, return_dict: bool) -> Any:
    """A head's seq2seq output: its own fields, then the base model's (decoder, cross, encoder)."""
    if not return_dict:
        return tuple(head.values()) + tuple(outputs[1:])
    return output_cls(
        **head,
        decoder_hidden_states=outputs.decoder_hidden_states,
        decoder_attentions=outputs.decoder_attentions,
        cross_attentions=outputs.cross_attentions,
        encoder_last_hidden_state=outputs.encoder_last_hidden_state,
        encoder_hidden_states=outputs.encoder_hidden_states,
        encoder_attentions=outputs.encoder_attentions,
    )


class _HeadModule(nn.Module):
    """A head over `model` (the encoder-decoder); `encode` and `decode` are the base model's."""

    config: BartConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    base_module: ClassVar[type[nn.Module]] = FlaxBartModule  # the encoder-decoder under the head

    def setup(self):
        self.model = self.base_module(self.config, self.dtype, self.gradient_checkpointing, self.remat_policy)
        self.setup_head()

    def setup_head(self):
        raise NotImplementedError

    def encode(self, *args, **kwargs):
        return self.model.encode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.model.decode(*args, **kwargs)


class FlaxBartForConditionalGenerationModule(_HeadModule):
    """Logits against the shared embedding (tied, read in place) or an own `lm_head`, plus the
    checkpoint's `final_logits_bias`."""

    def setup_head(self):
        cfg = self.config
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg, cfg.vocab_size, self.dtype, "lm_head", use_bias=False)
        if cfg.architecture.final_logits_bias:
            self.final_logits_bias = self.param("final_logits_bias", nn.initializers.zeros, (1, cfg.vocab_size))

    def output_embedding(self) -> jax.Array:
        """The token embedding a tied head reads in place."""
        return self.model.shared.embedding

    def logits(self, hidden):
        if self.config.tie_word_embeddings:
            logits = tied_logits(hidden, self.output_embedding(), self.dtype)
        else:
            logits = self.lm_head(hidden)
        if not self.config.architecture.final_logits_bias:
            return logits  # [B, T, V]
        return logits + jax.lax.stop_gradient(self.final_logits_bias.astype(self.dtype))

    def decode(self, *args, return_dict=True, **kwargs):
        outputs = self.model.decode(*args, return_dict=return_dict, **kwargs)
        logits = self.logits(outputs[0])
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutputWithCrossAttentions(logits=logits, hidden_states=outputs.hidden_states,
                                                     attentions=outputs.attentions,
                                                     cross_attentions=outputs.cross_attentions)

    def __call__(self, *args, return_dict=True, **kwargs):
        outputs = self.model(*args, return_dict=return_dict, **kwargs)
        return seq2seq_output(FlaxSeq2SeqLMOutput, {"logits": self.logits(outputs[0])}, outputs, return_dict)


class FlaxBartClassificationHead(nn.Module):
    config: BartConfig
    num_classes: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic=True):
        cfg = self.config
        dropout = nn.Dropout(cfg.classifier_dropout)
        hidden = jnp.tanh(_dense(cfg, cfg.d_model, self.dtype, "dense")(dropout(hidden, deterministic=deterministic)))
        return _dense(cfg, self.num_classes, self.dtype, "out_proj")(dropout(hidden, deterministic=deterministic))


def last_eos_states(hidden: jax.Array, input_ids: jax.Array, eos_token_id: int) -> jax.Array:
    """The decoder states [B, D] at each row's last eos token of the (encoder) input."""
    is_eos = input_ids == eos_token_id  # [B, T]
    last = input_ids.shape[1] - 1 - jnp.argmax(is_eos[:, ::-1], axis=1)  # [B]
    return jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0]


class FlaxBartForSequenceClassificationModule(_HeadModule):
    num_labels: int | None = None

    def setup_head(self):
        num = self.num_labels if self.num_labels is not None else self.config.num_labels
        self.classification_head = FlaxBartClassificationHead(self.config, num, self.dtype)

    def __call__(self, input_ids, *args, return_dict=True, deterministic=True, **kwargs):
        outputs = self.model(input_ids, *args, return_dict=return_dict, deterministic=deterministic, **kwargs)
        pooled = last_eos_states(outputs[0], input_ids, self.config.eos_token_id)  # [B, D]
        logits = self.classification_head(pooled, deterministic=deterministic)
        return seq2seq_output(FlaxSeq2SeqSequenceClassifierOutput, {"logits": logits}, outputs, return_dict)


class FlaxBartForQuestionAnsweringModule(_HeadModule):
    num_labels = 2

    def setup_head(self):
        self.qa_outputs = _dense(self.config, self.num_labels, self.dtype, "qa_outputs")

    def __call__(self, *args, return_dict=True, **kwargs):
        outputs = self.model(*args, return_dict=return_dict, **kwargs)
        start, end = (x.squeeze(-1) for x in jnp.split(self.qa_outputs(outputs[0]), 2, axis=-1))  # [B, T] each
        return seq2seq_output(FlaxSeq2SeqQuestionAnsweringModelOutput, {"start_logits": start, "end_logits": end},
                              outputs, return_dict)


# --- the decoder alone (FlaxBartForCausalLM) -------------------------------------------------------
class FlaxBartDecoderWrapper(nn.Module):
    """`model/decoder/...` with its own `embed_tokens`, so BartForCausalLM checkpoints load as they are."""

    config: BartConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        embed_tokens = _embed(self.config, self.config.vocab_size, self.dtype)
        self.decoder = FlaxBartStack(self.config, embed_tokens, self.dtype, decoder=True,
                                     gradient_checkpointing=self.gradient_checkpointing,
                                     remat_policy=self.remat_policy)

    def __call__(self, *args, **kwargs):
        return self.decoder(*args, **kwargs)


class FlaxBartForCausalLMModule(nn.Module):
    config: BartConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.model = FlaxBartDecoderWrapper(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg, cfg.vocab_size, self.dtype, "lm_head", use_bias=False)

    def __call__(self, input_ids, attention_mask, position_ids, encoder_hidden_states=None,
                 encoder_attention_mask=None, init_cache=False, output_attentions=False, output_hidden_states=False,
                 return_dict=True, deterministic=True):
        outputs = self.model(input_ids, attention_mask, position_ids, encoder_hidden_states, encoder_attention_mask,
                             init_cache=init_cache, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, return_dict=return_dict,
                             deterministic=deterministic)
        if self.config.tie_word_embeddings:
            logits = tied_logits(outputs[0], self.model.decoder.embed_tokens.embedding, self.dtype)
        else:
            logits = self.lm_head(outputs[0])
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutputWithCrossAttentions(logits=logits, hidden_states=outputs.hidden_states,
                                                     attentions=outputs.attentions,
                                                     cross_attentions=outputs.cross_attentions)


# --- the model classes ---------------------------------------------------------------------------
class FlaxBartPreTrainedModel(Seq2SeqPreTrainedModel):
    config_class = BartConfig
    base_model_prefix = "model"
    # Tied copies of the shared embedding that PyTorch checkpoints may hold, and fairseq's version buffers.
    _keys_to_ignore_on_load_unexpected = (r"(^|\.)(encoder|decoder)\.embed_tokens\.weight$",
                                          r"(^|\.)(encoder|decoder)\.version$")
    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}

    def __init__(self, config: BartConfig, input_shape: tuple[int, ...] = (1, 1), seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, gradient_checkpointing: bool = False,
                 **kwargs: Any):
        super().__init__(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=_do_init, **kwargs)
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()

    def constant_tensors(self) -> dict[str, np.ndarray]:
        """transformers stores the fixed sinusoidal tables as weights of the sinusoidal families."""
        cfg = self.config
        if not cfg.architecture.sinusoidal_positions:
            return {}
        prefix = f"{self.base_model_prefix}." if self.base_model_prefix in self.params_shape_tree else ""
        table = sinusoidal_positions(cfg.max_position_embeddings, cfg.d_model)
        return {f"{prefix}{side}.embed_positions.weight": table for side in ("encoder", "decoder")}


class FlaxBartModel(FlaxBartPreTrainedModel):
    module_class = FlaxBartModule


class FlaxBartForConditionalGeneration(FlaxBartPreTrainedModel):
    module_class = FlaxBartForConditionalGenerationModule
    is_seq2seq_lm = True


class FlaxBartForSequenceClassification(FlaxBartPreTrainedModel):
    module_class = FlaxBartForSequenceClassificationModule

    def _check_inputs(self, inputs: dict[str, jax.Array]) -> None:
        """4.57's checks: the head pools each row's last eos token, so every row needs the same number of them."""
        ids = inputs["input_ids"]
        if isinstance(ids, jax.core.Tracer):
            return
        counts = np.sum(np.asarray(ids) == self.config.eos_token_id, axis=1)
        if np.any(counts == 0):
            raise ValueError(f"There are missing <eos> tokens (eos_token_id={self.config.eos_token_id}) in input_ids: "
                             "the classifier reads each row's last one. Tokenize with add_special_tokens=True.")
        if len(np.unique(counts)) > 1:
            raise ValueError("All examples must have the same number of <eos> tokens.")


class FlaxBartForQuestionAnswering(FlaxBartPreTrainedModel):
    module_class = FlaxBartForQuestionAnsweringModule


class FlaxBartDecoderPreTrainedModel(FlaxCrossAttendingDecoderModel):
    """The decoder alone, as a causal LM (with optional cross-attention over given encoder states)."""

    config_class = BartConfig
    base_model_prefix = "model"
    _tied_weights_keys = {"lm_head.weight": "model.decoder.embed_tokens.weight"}

    def __init__(self, config: BartConfig, input_shape: tuple[int, ...] = (1, 1), seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, **kwargs: Any):
        config.is_decoder = True
        config.is_encoder_decoder = False
        super().__init__(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=_do_init, **kwargs)

    def dummy_inputs(self, input_shape):
        inputs = super().dummy_inputs(input_shape)
        inputs["position_ids"] = jnp.broadcast_to(jnp.arange(input_shape[-1]), input_shape)
        inputs["encoder_hidden_states"] = jnp.zeros((*input_shape, self.config.d_model), self.dtype)
        inputs["encoder_attention_mask"] = inputs["attention_mask"]
        return inputs


class FlaxBartForCausalLM(FlaxBartDecoderPreTrainedModel):
    module_class = FlaxBartForCausalLMModule
    is_causal_lm = True


__all__ = [
    "FlaxBartDecoderPreTrainedModel",
    "FlaxBartForCausalLM",
    "FlaxBartForConditionalGeneration",
    "FlaxBartForQuestionAnswering",
    "FlaxBartForSequenceClassification",
    "FlaxBartModel",
    "FlaxBartPreTrainedModel",
]

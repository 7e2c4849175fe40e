"""BERT in Flax: the base model and the eight heads of transformers 4.x Flax, with its param names.

What is BERT's own: word + position + token-type embeddings with a LayerNorm, post-norm blocks
(`attention.self` / `attention.output`, `intermediate`, `output`), the tanh pooler over [CLS],
the MLM head tied to the word embeddings, and an optional decoder mode (`is_decoder`: causal
self-attention with the static cache, `add_cross_attention`: attention over encoder states).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.models.bert.configuration import BertConfig
from flaxformers.nn.attention import AttentionSpec, cross_attention, self_attention
from flaxformers.nn.layers import activation, layer_norm, tied_logits
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import (
    FlaxBaseModelOutputWithPastAndCrossAttentions,
    FlaxBaseModelOutputWithPoolingAndCrossAttentions,
    FlaxCausalLMOutputWithCrossAttentions,
    FlaxMaskedLMOutput,
    FlaxMultipleChoiceModelOutput,
    FlaxNextSentencePredictorOutput,
    FlaxQuestionAnsweringModelOutput,
    FlaxSequenceClassifierOutput,
    FlaxTokenClassifierOutput,
    output_class,
)

FlaxBertForPreTrainingOutput = output_class(
    "FlaxBertForPreTrainingOutput", "prediction_logits", "seq_relationship_logits", "hidden_states", "attentions"
)


def _dense(cfg: BertConfig, features: int, dtype: jnp.dtype, name: str) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, kernel_init=nn.initializers.normal(cfg.initializer_range), name=name)


def _classifier_dropout(cfg: BertConfig) -> float:
    return cfg.classifier_dropout if cfg.classifier_dropout is not None else cfg.hidden_dropout_prob


# --- the encoder ---------------------------------------------------------------------------------
class FlaxBertEmbeddings(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, input_ids, token_type_ids, position_ids, deterministic: bool = True):
        cfg = self.config
        init = nn.initializers.normal(cfg.initializer_range)
        embed = lambda n, name: nn.Embed(n, cfg.hidden_size, embedding_init=init, dtype=self.dtype, name=name)  # noqa: E731
        hidden = (
            embed(cfg.vocab_size, "word_embeddings")(input_ids.astype("i4"))
            + embed(cfg.type_vocab_size, "token_type_embeddings")(token_type_ids.astype("i4"))
            + embed(cfg.max_position_embeddings, "position_embeddings")(position_ids.astype("i4"))
        )  # [B, T, D]
        hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "LayerNorm")(hidden)
        return nn.Dropout(cfg.hidden_dropout_prob)(hidden, deterministic=deterministic)


class FlaxBertSelfAttention(nn.Module):
    """Query/key/value projections; the attention itself (mask, cache, head mask) is the shared one."""

    config: BertConfig
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, layer_head_mask=None, key_value_states=None, init_cache=False,
                 deterministic=True):
        cfg = self.config
        n = cfg.num_attention_heads
        h = cfg.hidden_size // n
        spec = AttentionSpec(scale=1.0 / math.sqrt(h), causal=self.causal,
                             dropout_rate=cfg.attention_probs_dropout_prob)
        source = hidden if key_value_states is None else key_value_states
        heads = lambda x: x.reshape(*x.shape[:2], n, h)  # noqa: E731  [B, T, N, H]
        query = heads(_dense(cfg, cfg.hidden_size, self.dtype, "query")(hidden))
        key = heads(_dense(cfg, cfg.hidden_size, self.dtype, "key")(source))
        value = heads(_dense(cfg, cfg.hidden_size, self.dtype, "value")(source))
        if key_value_states is not None:
            out, weights = cross_attention(self, query, key, value, spec, attention_mask,
                                           head_mask=layer_head_mask, deterministic=deterministic)
        else:
            out, weights = self_attention(self, query, key, value, spec, attention_mask, init_cache=init_cache,
                                          head_mask=layer_head_mask, deterministic=deterministic)
        return out.reshape(*out.shape[:2], cfg.hidden_size), weights  # [B, T, D], [B, N, T, S]


class FlaxBertSelfOutput(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, residual, deterministic: bool = True):
        cfg = self.config
        hidden = _dense(cfg, cfg.hidden_size, self.dtype, "dense")(hidden)
        hidden = nn.Dropout(cfg.hidden_dropout_prob)(hidden, deterministic=deterministic)
        return layer_norm(cfg.layer_norm_eps, self.dtype, "LayerNorm")(hidden + residual)


class FlaxBertAttention(nn.Module):
    config: BertConfig
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, layer_head_mask=None, key_value_states=None, init_cache=False,
                 deterministic=True):
        out, weights = FlaxBertSelfAttention(self.config, self.causal, self.dtype, name="self")(
            hidden, attention_mask, layer_head_mask, key_value_states, init_cache, deterministic
        )
        return FlaxBertSelfOutput(self.config, self.dtype, name="output")(out, hidden, deterministic), weights


class FlaxBertIntermediate(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        return activation(cfg.hidden_act)(_dense(cfg, cfg.intermediate_size, self.dtype, "dense")(hidden))


class FlaxBertOutput(FlaxBertSelfOutput):
    """Same computation as the attention output (dense, dropout, residual LayerNorm), own params."""


class FlaxBertLayer(nn.Module):
    """One post-norm block, called by `LayerStack`."""

    config: BertConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask,
                 deterministic=True, init_cache=False, output_attentions=False):
        cfg = self.config
        layer_head_mask = None if head_mask is None else head_mask[self.layer_idx]  # [N]
        hidden, self_weights = FlaxBertAttention(cfg, causal=cfg.is_decoder, dtype=self.dtype, name="attention")(
            hidden, attention_mask, layer_head_mask, init_cache=init_cache, deterministic=deterministic
        )
        cross_weights = None
        if encoder_hidden_states is not None:
            # transformers 4.x Flax applies the layer's head mask to the cross-attention too.
            hidden, cross_weights = FlaxBertAttention(cfg, causal=False, dtype=self.dtype, name="crossattention")(
                hidden, encoder_attention_mask, layer_head_mask, key_value_states=encoder_hidden_states,
                deterministic=deterministic,
            )
        out = FlaxBertIntermediate(cfg, self.dtype, name="intermediate")(hidden)
        out = FlaxBertOutput(cfg, self.dtype, name="output")(out, hidden, deterministic)
        if not output_attentions:
            self_weights = cross_weights = None
        return out, self_weights, cross_weights


class FlaxBertEncoder(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, hidden, attention_mask, head_mask=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, init_cache=False, deterministic=True, output_attentions=False,
                 output_hidden_states=False, return_dict=True):
        cfg = self.config
        if head_mask is not None and getattr(cfg, "scan_layers", False):
            raise ValueError("head_mask needs per-layer blocks, but config.scan_layers=True shares one block "
                             "trace across layers; set config.scan_layers=False to use head_mask.")
        layers = LayerStack(FlaxBertLayer, cfg.num_hidden_layers, {"config": cfg, "dtype": self.dtype},
                            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                            name="layer")
        hidden, all_hidden, attentions, cross = layers(
            hidden, (attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask),
            deterministic, init_cache, output_attentions, output_hidden_states,
        )
        if output_hidden_states:
            all_hidden = all_hidden + (hidden,)
        if not return_dict:
            return tuple(v for v in (hidden, all_hidden, attentions, cross) if v is not None)
        return FlaxBaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden, hidden_states=all_hidden, attentions=attentions, cross_attentions=cross
        )


class FlaxBertPooler(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        return jnp.tanh(_dense(self.config, self.config.hidden_size, self.dtype, "dense")(hidden[:, 0]))  # [B, D]


class FlaxBertModule(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        self.embeddings = FlaxBertEmbeddings(self.config, dtype=self.dtype)
        self.encoder = FlaxBertEncoder(self.config, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if self.add_pooling_layer:
            self.pooler = FlaxBertPooler(self.config, dtype=self.dtype)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache=False, deterministic=True,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[-1]), input_ids.shape)
        if encoder_hidden_states is not None and not self.config.add_cross_attention:
            raise ValueError("encoder_hidden_states were passed, but this model has no cross-attention layers: "
                             "set config.add_cross_attention=True.")
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, deterministic=deterministic)
        outputs = self.encoder(
            hidden, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask, init_cache=init_cache,
            deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict,
        )
        hidden = outputs[0]
        pooled = self.pooler(hidden) if self.add_pooling_layer else None
        if not return_dict:
            return (hidden,) + ((pooled,) if pooled is not None else ()) + tuple(outputs[1:])
        return FlaxBaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=hidden, pooler_output=pooled, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions, cross_attentions=outputs.cross_attentions,
        )

    def word_embeddings(self) -> jax.Array:
        return self.embeddings.variables["params"]["word_embeddings"]["embedding"]  # [V, D]


# --- heads ---------------------------------------------------------------------------------------
class FlaxBertPredictionHeadTransform(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        hidden = activation(cfg.hidden_act)(_dense(cfg, cfg.hidden_size, self.dtype, "dense")(hidden))
        return layer_norm(cfg.layer_norm_eps, self.dtype, "LayerNorm")(hidden)


class FlaxBertLMPredictionHead(nn.Module):
    """Transform, then logits against the word embeddings (tied, read in place) or an own `decoder`."""

    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, shared_embedding=None):
        cfg = self.config
        hidden = FlaxBertPredictionHeadTransform(cfg, self.dtype, name="transform")(hidden)
        if shared_embedding is not None:
            logits = tied_logits(hidden, shared_embedding, self.dtype)  # [B, T, V]
        else:
            logits = nn.Dense(cfg.vocab_size, use_bias=False, dtype=self.dtype,
                              kernel_init=nn.initializers.normal(cfg.initializer_range), name="decoder")(hidden)
        bias = self.param("bias", nn.initializers.zeros, (cfg.vocab_size,))
        return logits + bias.astype(self.dtype)


class FlaxBertOnlyMLMHead(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, shared_embedding=None):
        return FlaxBertLMPredictionHead(self.config, self.dtype, name="predictions")(hidden, shared_embedding)


class FlaxBertOnlyNSPHead(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pooled):
        return _dense(self.config, 2, self.dtype, "seq_relationship")(pooled)


class FlaxBertPreTrainingHeads(nn.Module):
    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, pooled, shared_embedding=None):
        logits = FlaxBertLMPredictionHead(self.config, self.dtype, name="predictions")(hidden, shared_embedding)
        return logits, _dense(self.config, 2, self.dtype, "seq_relationship")(pooled)


class _HeadModule(nn.Module):
    """A head over `bert`: subclasses set `pooling` and write `head(outputs, deterministic)`."""

    config: BertConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    pooling = True

    def setup(self):
        self.bert = FlaxBertModule(self.config, self.dtype, add_pooling_layer=self.pooling,
                                   gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy)
        self.setup_head()

    def setup_head(self):
        raise NotImplementedError

    def shared_embedding(self) -> jax.Array | None:
        return self.bert.word_embeddings() if self.config.tie_word_embeddings else None

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True):
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                            deterministic=deterministic, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict)
        return self.head(outputs, deterministic, return_dict)


class FlaxBertForPreTrainingModule(_HeadModule):
    def setup_head(self):
        self.cls = FlaxBertPreTrainingHeads(self.config, self.dtype)

    def head(self, outputs, deterministic, return_dict):
        logits, seq_logits = self.cls(outputs[0], outputs[1], self.shared_embedding())
        if not return_dict:
            return (logits, seq_logits) + tuple(outputs[2:])
        return FlaxBertForPreTrainingOutput(prediction_logits=logits, seq_relationship_logits=seq_logits,
                                            hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBertForMaskedLMModule(_HeadModule):
    pooling = False

    def setup_head(self):
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype)

    def head(self, outputs, deterministic, return_dict):
        logits = self.cls(outputs[0], self.shared_embedding())
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxMaskedLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBertForNextSentencePredictionModule(_HeadModule):
    def setup_head(self):
        self.cls = FlaxBertOnlyNSPHead(self.config, self.dtype)

    def head(self, outputs, deterministic, return_dict):
        logits = self.cls(outputs[1])  # [B, 2]
        if not return_dict:
            return (logits,) + tuple(outputs[2:])
        return FlaxNextSentencePredictorOutput(logits=logits, hidden_states=outputs.hidden_states,
                                               attentions=outputs.attentions)


class FlaxBertForSequenceClassificationModule(_HeadModule):
    """Logits over `num_labels` from the pooled [CLS]; `problem_type` only chooses the loss."""

    def setup_head(self):
        self.dropout = nn.Dropout(_classifier_dropout(self.config))
        self.classifier = _dense(self.config, self.config.num_labels, self.dtype, "classifier")

    def head(self, outputs, deterministic, return_dict):
        logits = self.classifier(self.dropout(outputs[1], deterministic=deterministic))  # [B, num_labels]
        if not return_dict:
            return (logits,) + tuple(outputs[2:])
        return FlaxSequenceClassifierOutput(logits=logits, hidden_states=outputs.hidden_states,
                                            attentions=outputs.attentions)


class FlaxBertForMultipleChoiceModule(_HeadModule):
    def setup_head(self):
        self.dropout = nn.Dropout(self.config.hidden_dropout_prob)
        self.classifier = _dense(self.config, 1, self.dtype, "classifier")

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True):
        num_choices = input_ids.shape[1]
        flat = lambda x: None if x is None else x.reshape(-1, x.shape[-1])  # noqa: E731  [B*C, T]
        outputs = self.bert(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids),
                            head_mask, deterministic=deterministic, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict)
        logits = self.classifier(self.dropout(outputs[1], deterministic=deterministic))
        logits = logits.reshape(-1, num_choices)  # [B, C]
        if not return_dict:
            return (logits,) + tuple(outputs[2:])
        return FlaxMultipleChoiceModelOutput(logits=logits, hidden_states=outputs.hidden_states,
                                             attentions=outputs.attentions)


class FlaxBertForTokenClassificationModule(_HeadModule):
    pooling = False

    def setup_head(self):
        self.dropout = nn.Dropout(_classifier_dropout(self.config))
        self.classifier = _dense(self.config, self.config.num_labels, self.dtype, "classifier")

    def head(self, outputs, deterministic, return_dict):
        logits = self.classifier(self.dropout(outputs[0], deterministic=deterministic))  # [B, T, num_labels]
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxTokenClassifierOutput(logits=logits, hidden_states=outputs.hidden_states,
                                         attentions=outputs.attentions)


class FlaxBertForQuestionAnsweringModule(_HeadModule):
    pooling = False

    def setup_head(self):
        self.qa_outputs = _dense(self.config, self.config.num_labels, self.dtype, "qa_outputs")

    def head(self, outputs, deterministic, return_dict):
        logits = self.qa_outputs(outputs[0])  # [B, T, num_labels]
        start, end = (x.squeeze(-1) for x in jnp.split(logits, self.config.num_labels, axis=-1))
        if not return_dict:
            return (start, end) + tuple(outputs[1:])
        return FlaxQuestionAnsweringModelOutput(start_logits=start, end_logits=end,
                                                hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBertForCausalLMModule(_HeadModule):
    """The decoder head. Its keyword signature is what the shared generation engine calls."""

    pooling = False

    def setup_head(self):
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, token_type_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True):
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                            encoder_hidden_states=encoder_hidden_states,
                            encoder_attention_mask=encoder_attention_mask, init_cache=init_cache,
                            deterministic=deterministic, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict)
        logits = self.cls(outputs[0], self.shared_embedding())
        if not return_dict:
            return (logits,) + tuple(outputs[1:])
        return FlaxCausalLMOutputWithCrossAttentions(logits=logits, hidden_states=outputs.hidden_states,
                                                     attentions=outputs.attentions,
                                                     cross_attentions=outputs.cross_attentions)


# --- the model classes ---------------------------------------------------------------------------
def _as_array(x: Any, dtype: str) -> jax.Array:
    return jnp.asarray(x, dtype=dtype)


class FlaxBertPreTrainedModel(FlaxPreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # Buffers of PyTorch checkpoints, the decoder bias (a copy of `cls.predictions.bias`), and a
    # pooler that heads without one don't use.
    _keys_to_ignore_on_load_unexpected = (r"position_ids$", r"token_type_ids$", r"cls\.predictions\.decoder\.bias$")
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _takes_encoder_states = False  # only the base model and the causal LM accept encoder_hidden_states

    def __init__(self, config: BertConfig, input_shape: tuple[int, ...] = (1, 1), seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, gradient_checkpointing: bool = False,
                 **kwargs: Any):
        super().__init__(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=_do_init, **kwargs)
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()

    def dummy_inputs(self, input_shape):
        input_ids = jnp.zeros(input_shape, dtype="i4")
        inputs = {
            "input_ids": input_ids,
            "attention_mask": jnp.ones_like(input_ids),
            "token_type_ids": jnp.zeros_like(input_ids),
            "position_ids": jnp.broadcast_to(jnp.arange(input_shape[-1]), input_shape),
        }
        if self.config.add_cross_attention and self._takes_encoder_states:
            inputs["encoder_hidden_states"] = jnp.zeros((*input_shape, self.config.hidden_size), self.dtype)
            inputs["encoder_attention_mask"] = inputs["attention_mask"]
        return inputs

    def init_cache(self, batch_size: int, max_length: int) -> dict:
        if not self.config.is_decoder:
            raise ValueError("init_cache needs a decoder: set config.is_decoder=True (BERT's self-attention is "
                             "bidirectional otherwise and keeps no cache).")
        return super().init_cache(batch_size, max_length)

    def _head_mask(self, head_mask: Any) -> jax.Array:
        """[N] (every layer) or [L, N] -> [L, N] floats, with a clear error for other shapes."""
        cfg = self.config
        head_mask = jnp.asarray(head_mask, dtype=self.dtype)
        if head_mask.ndim == 1:
            head_mask = jnp.broadcast_to(head_mask, (cfg.num_hidden_layers, head_mask.shape[0]))
        if head_mask.shape != (cfg.num_hidden_layers, cfg.num_attention_heads):
            raise ValueError(
                f"head_mask has shape {tuple(np.shape(head_mask))}; expected (num_hidden_layers, num_attention_heads)"
                f" = ({cfg.num_hidden_layers}, {cfg.num_attention_heads}) or (num_attention_heads,)."
            )
        return head_mask

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: dict | None = None,
    ):
        shape = jnp.shape(input_ids)
        if token_type_ids is None:
            token_type_ids = jnp.zeros(shape, dtype="i4")
        if position_ids is None:
            if past_key_values is not None:
                raise ValueError("Make sure to provide `position_ids` when passing `past_key_values`.")
            position_ids = jnp.broadcast_to(jnp.arange(shape[-1]), shape)
        self._check_input_ids(np.reshape(input_ids, (-1, shape[-1])) if len(shape) > 2 else input_ids,
                              position_ids)
        type_ids = token_type_ids
        if not isinstance(type_ids, jax.core.Tracer) and np.size(type_ids):
            top = int(np.max(type_ids))
            if top >= self.config.type_vocab_size or int(np.min(type_ids)) < 0:
                raise ValueError(f"token_type_ids holds {top}, outside [0, type_vocab_size="
                                 f"{self.config.type_vocab_size}). Pass 0/1 segment ids, or none.")
        inputs = {
            "input_ids": _as_array(input_ids, "i4"),
            "attention_mask": self._attention_mask(shape, attention_mask, past_key_values),
            "token_type_ids": _as_array(token_type_ids, "i4"),
            "position_ids": _as_array(position_ids, "i4"),
        }
        if head_mask is not None:
            inputs["head_mask"] = self._head_mask(head_mask)
        if encoder_hidden_states is not None:
            if not self._takes_encoder_states:
                raise ValueError(f"{type(self).__name__} takes no encoder_hidden_states; use FlaxBertModel or "
                                 "FlaxBertForCausalLM with config.add_cross_attention=True.")
            inputs["encoder_hidden_states"] = encoder_hidden_states
            inputs["encoder_attention_mask"] = (
                None if encoder_attention_mask is None else _as_array(encoder_attention_mask, "i4")
            )
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


class FlaxBertModel(FlaxBertPreTrainedModel):
    module_class = FlaxBertModule
    _takes_encoder_states = True


class FlaxBertForPreTraining(FlaxBertPreTrainedModel):
    module_class = FlaxBertForPreTrainingModule


class FlaxBertForMaskedLM(FlaxBertPreTrainedModel):
    module_class = FlaxBertForMaskedLMModule
    _keys_to_ignore_on_load_unexpected = FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected + (r"pooler",)


class FlaxBertForNextSentencePrediction(FlaxBertPreTrainedModel):
    module_class = FlaxBertForNextSentencePredictionModule


class FlaxBertForSequenceClassification(FlaxBertPreTrainedModel):
    module_class = FlaxBertForSequenceClassificationModule


class FlaxBertForMultipleChoice(FlaxBertPreTrainedModel):
    module_class = FlaxBertForMultipleChoiceModule


class FlaxBertForTokenClassification(FlaxBertPreTrainedModel):
    module_class = FlaxBertForTokenClassificationModule
    _keys_to_ignore_on_load_unexpected = FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected + (r"pooler",)


class FlaxBertForQuestionAnswering(FlaxBertPreTrainedModel):
    module_class = FlaxBertForQuestionAnsweringModule
    _keys_to_ignore_on_load_unexpected = FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected + (r"pooler",)


class FlaxBertForCausalLM(FlaxBertPreTrainedModel):
    module_class = FlaxBertForCausalLMModule
    _takes_encoder_states = True
    is_causal_lm = True
    _keys_to_ignore_on_load_unexpected = FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected + (r"pooler",)


__all__ = [
    "FlaxBertForCausalLM",
    "FlaxBertForMaskedLM",
    "FlaxBertForMultipleChoice",
    "FlaxBertForNextSentencePrediction",
    "FlaxBertForPreTraining",
    "FlaxBertForQuestionAnswering",
    "FlaxBertForSequenceClassification",
    "FlaxBertForTokenClassification",
    "FlaxBertModel",
    "FlaxBertPreTrainedModel",
]

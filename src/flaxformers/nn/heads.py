"""The heads of the encoders, written once: classification, token tagging, span QA, multiple choice,
masked and causal LM, over any encoder base module.

A family's head module subclasses one of the task modules below and names its base module class
(`base_module`) and the attribute it lives under (`base_name`: transformers' `bert`, `roberta`, ...),
so param paths are `<base_name>/...` as in transformers. What differs between families is data or a
small override: the classifier's form, the dropout rate, how multiple choice summarises a sequence,
and the language-model head's layout (`lm_logits`).

Every base module is called with the same keywords and returns a ModelOutput with
`last_hidden_state`, `pooler_output` (or None), `hidden_states`, `attentions` (and `cross_attentions`);
heads return theirs, as a tuple when `return_dict=False` (None fields left out, as transformers does).
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.nn.encoder import dense
from flaxformers.nn.layers import activation, layer_norm, tied_logits
from flaxformers.outputs import (
    FlaxCausalLMOutputWithCrossAttentions,
    FlaxMaskedLMOutput,
    FlaxMultipleChoiceModelOutput,
    FlaxQuestionAnsweringModelOutput,
    FlaxSequenceClassifierOutput,
    FlaxTokenClassifierOutput,
)


def classifier_dropout(config: Any) -> float:
    """`classifier_dropout` (or `classifier_dropout_prob`) when set, else `hidden_dropout_prob`."""
    for key in ("classifier_dropout", "classifier_dropout_prob"):
        value = getattr(config, key, None)
        if value is not None:
            return value
    return config.hidden_dropout_prob


# --- pieces ---------------------------------------------------------------------------------------
def transform(hidden: jax.Array, config: Any, features: int, act: str, dtype: jnp.dtype,
              norm_name: str = "LayerNorm") -> jax.Array:
    """dense -> activation -> LayerNorm, as children `dense` and `norm_name` of the calling compact module."""
    hidden = activation(act)(dense(config, features, dtype, "dense")(hidden))
    return layer_norm(config.layer_norm_eps, dtype, norm_name)(hidden)


class PredictionHeadTransform(nn.Module):
    config: Any
    features: int
    act: str
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        return transform(hidden, self.config, self.features, self.act, self.dtype)


class PredictionHead(nn.Module):
    """Masked-LM logits: transform, then logits against the word embeddings (tied, read in place) or an own
    `decoder`, plus `bias`. `nested` keeps the transform in a `transform` child (BERT's layout) instead of
    inline children (RoBERTa's `dense`/`layer_norm`, ALBERT's `dense`/`LayerNorm`)."""

    config: Any
    dtype: jnp.dtype = jnp.float32
    features: int | None = None  # transform width: hidden_size when None (embedding_size for factorised models)
    act: str | None = None  # the config's hidden_act when None
    nested: bool = True
    norm_name: str = "LayerNorm"

    @nn.compact
    def __call__(self, hidden, shared_embedding=None):
        cfg = self.config
        features, act = self.features or cfg.hidden_size, self.act or cfg.hidden_act
        if self.nested:
            hidden = PredictionHeadTransform(cfg, features, act, self.dtype, name="transform")(hidden)
        else:
            hidden = transform(hidden, cfg, features, act, self.dtype, self.norm_name)
        if shared_embedding is not None:
            logits = tied_logits(hidden, shared_embedding, self.dtype)  # [B, T, V]
        else:
            logits = dense(cfg, cfg.vocab_size, self.dtype, "decoder", use_bias=False)(hidden)
        return logits + self.param("bias", nn.initializers.zeros, (cfg.vocab_size,)).astype(self.dtype)


class VocabProjection(nn.Module):
    """Logits with this module's `bias` and, untied, its own `kernel` [D, V] (a Linear without a split bias)."""

    config: Any
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, shared_embedding=None):
        cfg = self.config
        if shared_embedding is not None:
            logits = tied_logits(hidden, shared_embedding, self.dtype)  # [B, T, V]
        else:
            kernel = self.param("kernel", nn.initializers.normal(cfg.initializer_range), (hidden.shape[-1], cfg.vocab_size))
            logits = jnp.einsum("btd,dv->btv", hidden.astype(self.dtype), kernel.astype(self.dtype))
        return logits + self.param("bias", nn.initializers.zeros, (cfg.vocab_size,)).astype(self.dtype)


class ClassificationHead(nn.Module):
    """First token -> dropout -> dense -> activation -> dropout -> out_proj (RoBERTa's `classifier`)."""

    config: Any
    act: str
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic: bool = True):
        cfg = self.config
        drop = nn.Dropout(classifier_dropout(cfg))
        x = drop(hidden[:, 0], deterministic=deterministic)  # [B, D]
        x = activation(self.act)(dense(cfg, cfg.hidden_size, self.dtype, "dense")(x))
        return dense(cfg, cfg.num_labels, self.dtype, "out_proj")(drop(x, deterministic=deterministic))


class SequenceSummary(nn.Module):
    """transformers' SequenceSummary of the first token: dropout, `summary` projection (to num_labels or
    hidden_size), activation, dropout, each per the config's `summary_*` keys."""

    config: Any
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic: bool = True):
        cfg = self.config
        out = hidden[:, 0]
        first, last = getattr(cfg, "summary_first_dropout", 0.0) or 0.0, getattr(cfg, "summary_last_dropout", 0.0) or 0.0
        out = nn.Dropout(first)(out, deterministic=deterministic or first == 0)
        if getattr(cfg, "summary_use_proj", False):
            to_labels = getattr(cfg, "summary_proj_to_labels", False) and cfg.num_labels > 0
            out = nn.Dense(cfg.num_labels if to_labels else cfg.hidden_size, dtype=self.dtype, name="summary")(out)
        act = getattr(cfg, "summary_activation", None)
        out = activation(act)(out) if act else out
        return nn.Dropout(last)(out, deterministic=deterministic or last == 0)


def split_span_logits(logits: jax.Array, num_labels: int) -> tuple[jax.Array, jax.Array]:
    """[B, T, 2] -> start [B, T], end [B, T]."""
    start, end = (x.squeeze(-1) for x in jnp.split(logits, num_labels, axis=-1))
    return start, end


# --- head modules ----------------------------------------------------------------------------------
class EncoderHeadModule(nn.Module):
    """A head over the family's base module, which lives under `base_name`."""

    config: Any
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    base_module: ClassVar[type[nn.Module]]
    base_name: ClassVar[str]
    pooling: ClassVar[bool] = False  # whether the base builds its pooler

    def setup(self):
        setattr(self, self.base_name, self.base_module(
            self.config, self.dtype, add_pooling_layer=self.pooling,
            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
        ))
        self.setup_head()

    def setup_head(self) -> None:
        raise NotImplementedError

    @property
    def base(self) -> nn.Module:
        return getattr(self, self.base_name)

    def shared_embedding(self) -> jax.Array | None:
        return self.base.word_embeddings() if self.config.tie_word_embeddings else None

    def encode(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask, deterministic,
               output_attentions, output_hidden_states, **extra):
        return self.base(input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                         deterministic=deterministic, output_attentions=output_attentions,
                         output_hidden_states=output_hidden_states, return_dict=True, **extra)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True):
        outputs = self.encode(input_ids, attention_mask, token_type_ids, position_ids, head_mask, deterministic,
                              output_attentions, output_hidden_states)
        out = self.head(outputs, deterministic)
        return out if return_dict else out.to_tuple()

    def head(self, outputs: Any, deterministic: bool) -> Any:
        raise NotImplementedError


def _states(outputs: Any) -> dict[str, Any]:
    return {"hidden_states": outputs.hidden_states, "attentions": outputs.attentions}


class SequenceClassificationModule(EncoderHeadModule):
    """Logits [B, num_labels]: dropout + `classifier` on the pooled output, or, with `classifier_act` set
    (a name, or "hidden_act" for the config's), a `ClassificationHead` on the first token."""

    pooling: ClassVar[bool] = True
    classifier_act: ClassVar[str | None] = None

    def setup_head(self):
        if self.classifier_act is None:
            self.dropout = nn.Dropout(classifier_dropout(self.config))
            self.classifier = dense(self.config, self.config.num_labels, self.dtype)
        else:
            act = self.config.hidden_act if self.classifier_act == "hidden_act" else self.classifier_act
            self.classifier = ClassificationHead(self.config, act, self.dtype)

    def logits(self, outputs, deterministic):
        if self.classifier_act is None:
            return self.classifier(self.dropout(outputs.pooler_output, deterministic=deterministic))
        return self.classifier(outputs.last_hidden_state, deterministic)

    def head(self, outputs, deterministic):
        return FlaxSequenceClassifierOutput(logits=self.logits(outputs, deterministic), **_states(outputs))


class MultipleChoiceModule(EncoderHeadModule):
    """Inputs [B, C, T] run as [B*C, T]; `summary` of each sequence -> `classifier` -> logits [B, C]."""

    pooling: ClassVar[bool] = True

    def setup_head(self):
        self.dropout = nn.Dropout(self.config.hidden_dropout_prob)
        self.classifier = dense(self.config, 1, self.dtype)

    def summary(self, outputs, deterministic):
        return self.dropout(outputs.pooler_output, deterministic=deterministic)  # [B*C, D]

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True):
        num_choices = input_ids.shape[1]
        flat = lambda x: None if x is None else x.reshape(-1, x.shape[-1])  # noqa: E731  [B*C, T]
        outputs = self.encode(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids),
                              head_mask, deterministic, output_attentions, output_hidden_states)
        logits = self.classifier(self.summary(outputs, deterministic)).reshape(-1, num_choices)  # [B, C]
        out = FlaxMultipleChoiceModelOutput(logits=logits, **_states(outputs))
        return out if return_dict else out.to_tuple()


class TokenClassificationModule(EncoderHeadModule):
    def dropout_rate(self) -> float:
        return classifier_dropout(self.config)

    def setup_head(self):
        self.dropout = nn.Dropout(self.dropout_rate())
        self.classifier = dense(self.config, self.config.num_labels, self.dtype)

    def head(self, outputs, deterministic):
        hidden = self.dropout(outputs.last_hidden_state, deterministic=deterministic)
        return FlaxTokenClassifierOutput(logits=self.classifier(hidden), **_states(outputs))  # [B, T, num_labels]


class QuestionAnsweringModule(EncoderHeadModule):
    dropout_key: ClassVar[str | None] = None  # the config key of a dropout before `qa_outputs`, if any

    def setup_head(self):
        if self.dropout_key is not None:
            self.dropout = nn.Dropout(getattr(self.config, self.dropout_key))
        self.qa_outputs = dense(self.config, self.config.num_labels, self.dtype)

    def head(self, outputs, deterministic):
        hidden = outputs.last_hidden_state
        if self.dropout_key is not None:
            hidden = self.dropout(hidden, deterministic=deterministic)
        start, end = split_span_logits(self.qa_outputs(hidden), self.config.num_labels)
        return FlaxQuestionAnsweringModelOutput(start_logits=start, end_logits=end, **_states(outputs))


class MaskedLMModule(EncoderHeadModule):
    """Logits [B, T, V] from the family's `lm_logits` (its LM head's layout)."""

    def lm_logits(self, hidden: jax.Array) -> jax.Array:
        raise NotImplementedError

    def head(self, outputs, deterministic):
        return FlaxMaskedLMOutput(logits=self.lm_logits(outputs.last_hidden_state), **_states(outputs))


class CausalLMModule(MaskedLMModule):
    """The decoder head (config.is_decoder). Its keyword signature is what the shared generation engine calls."""

    def __call__(self, input_ids, attention_mask=None, position_ids=None, token_type_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True):
        outputs = self.encode(input_ids, attention_mask, token_type_ids, position_ids, head_mask, deterministic,
                              output_attentions, output_hidden_states, encoder_hidden_states=encoder_hidden_states,
                              encoder_attention_mask=encoder_attention_mask, init_cache=init_cache)
        out = FlaxCausalLMOutputWithCrossAttentions(logits=self.lm_logits(outputs.last_hidden_state),
                                                    cross_attentions=outputs.cross_attentions, **_states(outputs))
        return out if return_dict else out.to_tuple()


__all__ = [
    "CausalLMModule", "ClassificationHead", "EncoderHeadModule", "MaskedLMModule", "MultipleChoiceModule",
    "PredictionHead", "PredictionHeadTransform", "QuestionAnsweringModule", "SequenceClassificationModule",
    "SequenceSummary", "TokenClassificationModule", "VocabProjection", "classifier_dropout", "split_span_logits",
    "transform",
]

"""DistilBERT in Flax: the base model and the five heads of transformers 4.x Flax, with its param names.

What is DistilBERT's own: no segment embeddings, learned or fixed sinusoidal positions
(`sinusoidal_pos_embds`), its block names (`transformer/layer/{i}`: `attention/{q,k,v,out}_lin`,
`sa_layer_norm`, `ffn/lin{1,2}`, `output_layer_norm`), and its heads (`vocab_transform`,
`vocab_layer_norm`, `vocab_projector`; `pre_classifier` with relu).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.checkpoints.convert import ConversionRules
from flaxformers.encoder_models import FlaxEncoderPreTrainedModel
from flaxformers.models.distilbert.configuration import DistilBertConfig
from flaxformers.nn import heads
from flaxformers.nn.embeddings import Embeddings, sinusoidal_positions
from flaxformers.nn.encoder import bidirectional_attention, check_head_mask_scan, dense
from flaxformers.nn.layers import activation, layer_norm
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import FlaxBaseModelOutput


class FlaxMultiHeadSelfAttention(nn.Module):
    config: DistilBertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, layer_head_mask, deterministic):
        out, weights = bidirectional_attention(self, hidden, attention_mask, layer_head_mask, deterministic,
                                               ("q_lin", "k_lin", "v_lin"))
        return dense(self.config, self.config.dim, self.dtype, "out_lin")(out), weights


class FlaxFFN(nn.Module):
    config: DistilBertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic):
        cfg = self.config
        hidden = activation(cfg.activation)(dense(cfg, cfg.hidden_dim, self.dtype, "lin1")(hidden))
        return nn.Dropout(cfg.dropout)(dense(cfg, cfg.dim, self.dtype, "lin2")(hidden), deterministic=deterministic)


class FlaxTransformerBlock(nn.Module):
    """One post-norm block, called by `LayerStack`."""

    config: DistilBertConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, head_mask, deterministic=True, init_cache=False,
                 output_attentions=False):
        cfg = self.config
        out, weights = FlaxMultiHeadSelfAttention(cfg, self.dtype, name="attention")(
            hidden, attention_mask, None if head_mask is None else head_mask[self.layer_idx], deterministic)
        out = layer_norm(cfg.layer_norm_eps, self.dtype, "sa_layer_norm")(out + hidden)
        ffn = FlaxFFN(cfg, self.dtype, name="ffn")(out, deterministic)
        return layer_norm(cfg.layer_norm_eps, self.dtype, "output_layer_norm")(ffn + out), (
            weights if output_attentions else None), None


class FlaxTransformer(nn.Module):
    """`transformer/layer/{i}`."""

    config: DistilBertConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, hidden, attention_mask, head_mask, deterministic, output_attentions, output_hidden_states):
        cfg = self.config
        check_head_mask_scan(cfg, head_mask)
        layers = LayerStack(FlaxTransformerBlock, cfg.n_layers, {"config": cfg, "dtype": self.dtype},
                            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                            name="layer")
        hidden, all_hidden, attentions, _ = layers(hidden, (attention_mask, head_mask), deterministic, False,
                                                   output_attentions, output_hidden_states)
        return hidden, None if all_hidden is None else all_hidden + (hidden,), attentions


class FlaxDistilBertModule(nn.Module):
    config: DistilBertConfig
    dtype: jnp.dtype = jnp.float32
    add_pooling_layer: bool = False  # DistilBERT has no pooler
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.embeddings = Embeddings(cfg, self.dtype, token_types=False,
                                     positions="sinusoidal" if cfg.sinusoidal_pos_embds else "learned")
        self.transformer = FlaxTransformer(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 deterministic=True, output_attentions=False, output_hidden_states=False, return_dict=True):
        if attention_mask is None:
            attention_mask = jnp.ones_like(input_ids)
        hidden = self.embeddings(input_ids, None, position_ids, deterministic=deterministic)
        hidden, all_hidden, attentions = self.transformer(hidden, attention_mask, head_mask, deterministic,
                                                          output_attentions, output_hidden_states)
        out = FlaxBaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=attentions)
        return out if return_dict else out.to_tuple()

    def word_embeddings(self) -> jax.Array:
        return self.embeddings.variables["params"]["word_embeddings"]["embedding"]  # [V, D]


class _DistilBert:
    base_module: ClassVar = FlaxDistilBertModule
    base_name: ClassVar[str] = "distilbert"


class FlaxDistilBertForMaskedLMModule(_DistilBert, heads.MaskedLMModule):
    def setup_head(self):
        cfg = self.config
        self.vocab_transform = dense(cfg, cfg.dim, self.dtype)
        self.vocab_layer_norm = layer_norm(cfg.layer_norm_eps, self.dtype)
        self.vocab_projector = heads.VocabProjection(cfg, self.dtype)

    def lm_logits(self, hidden):
        hidden = self.vocab_layer_norm(activation(self.config.activation)(self.vocab_transform(hidden)))
        return self.vocab_projector(hidden, self.shared_embedding())


class _PreClassifier(_DistilBert):
    """First token -> `pre_classifier` -> relu -> dropout -> `classifier`."""

    num_outputs: ClassVar[str | None] = "num_labels"  # a config key; None: one score

    def setup_head(self):
        cfg = self.config
        self.pre_classifier = dense(cfg, cfg.dim, self.dtype)
        self.dropout = nn.Dropout(cfg.seq_classif_dropout)
        self.classifier = dense(cfg, getattr(cfg, self.num_outputs) if self.num_outputs else 1, self.dtype)

    def pre_classify(self, outputs, deterministic):
        hidden = jax.nn.relu(self.pre_classifier(outputs.last_hidden_state[:, 0]))  # [B, D]
        return self.dropout(hidden, deterministic=deterministic)


class FlaxDistilBertForSequenceClassificationModule(_PreClassifier, heads.SequenceClassificationModule):
    def logits(self, outputs, deterministic):
        return self.classifier(self.pre_classify(outputs, deterministic))


class FlaxDistilBertForMultipleChoiceModule(_PreClassifier, heads.MultipleChoiceModule):
    num_outputs: ClassVar[str | None] = None

    def summary(self, outputs, deterministic):
        return self.pre_classify(outputs, deterministic)


class FlaxDistilBertForTokenClassificationModule(_DistilBert, heads.TokenClassificationModule):
    pass


class FlaxDistilBertForQuestionAnsweringModule(_DistilBert, heads.QuestionAnsweringModule):
    dropout_key: ClassVar[str] = "qa_dropout"


# --- the model classes ---------------------------------------------------------------------------
class FlaxDistilBertPreTrainedModel(FlaxEncoderPreTrainedModel):
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    uses_token_types = False
    _tied_weights_keys = {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"}
    _SINUSOID = "distilbert.embeddings.position_embeddings.weight"

    @classmethod
    def _conversion_rules(cls, config: DistilBertConfig) -> ConversionRules:
        rules = super()._conversion_rules(config)
        if not config.sinusoidal_pos_embds:
            return rules
        # The fixed table is a PyTorch buffer-like weight: read nowhere, written on save (constant_tensors).
        return dataclasses.replace(
            rules, ignore_unexpected=rules.ignore_unexpected + (r"embeddings\.position_embeddings\.weight$",))

    def constant_tensors(self) -> dict[str, np.ndarray]:
        cfg = self.config
        if not cfg.sinusoidal_pos_embds:
            return {}
        name = self._SINUSOID if self.module_class is not FlaxDistilBertModule else self._SINUSOID.split(".", 1)[1]
        return {name: sinusoidal_positions(cfg.max_position_embeddings, cfg.dim)}

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        head_mask=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        return self._encoder_call(
            input_ids, attention_mask, head_mask=head_mask, params=params, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


class FlaxDistilBertModel(FlaxDistilBertPreTrainedModel):
    module_class = FlaxDistilBertModule


class FlaxDistilBertForMaskedLM(FlaxDistilBertPreTrainedModel):
    module_class = FlaxDistilBertForMaskedLMModule


class FlaxDistilBertForSequenceClassification(FlaxDistilBertPreTrainedModel):
    module_class = FlaxDistilBertForSequenceClassificationModule


class FlaxDistilBertForMultipleChoice(FlaxDistilBertPreTrainedModel):
    module_class = FlaxDistilBertForMultipleChoiceModule


class FlaxDistilBertForTokenClassification(FlaxDistilBertPreTrainedModel):
    module_class = FlaxDistilBertForTokenClassificationModule


class FlaxDistilBertForQuestionAnswering(FlaxDistilBertPreTrainedModel):
    module_class = FlaxDistilBertForQuestionAnsweringModule


__all__ = [
    "FlaxDistilBertForMaskedLM",
    "FlaxDistilBertForMultipleChoice",
    "FlaxDistilBertForQuestionAnswering",
    "FlaxDistilBertForSequenceClassification",
    "FlaxDistilBertForTokenClassification",
    "FlaxDistilBertModel",
    "FlaxDistilBertPreTrainedModel",
]

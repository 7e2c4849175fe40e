"""ALBERT in Flax: the base model and the six heads of transformers 4.x Flax, with its param names.

What is ALBERT's own: factorised embeddings (`embedding_size`, mapped to the hidden width by
`encoder/embedding_hidden_mapping_in`), and `num_hidden_groups` groups of `inner_group_num` layers
shared across the `num_hidden_layers` passes (`encoder/albert_layer_groups/{g}/albert_layers/{j}`);
its block names (`attention/{query,key,value,dense,LayerNorm}`, `ffn`, `ffn_output`,
`full_layer_layer_norm`), a bare `pooler` dense layer and sentence-order prediction.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.encoder_models import FlaxEncoderPreTrainedModel
from flaxformers.models.albert.configuration import AlbertConfig
from flaxformers.nn import heads
from flaxformers.nn.embeddings import Embeddings
from flaxformers.nn.encoder import bidirectional_attention, check_head_mask_scan, dense
from flaxformers.nn.layers import activation, layer_norm
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import FlaxBaseModelOutputWithPooling, output_class

FlaxAlbertForPreTrainingOutput = output_class(
    "FlaxAlbertForPreTrainingOutput", "prediction_logits", "sop_logits", "hidden_states", "attentions"
)


class FlaxAlbertLayer(nn.Module):
    """Attention (with its output dense, dropout and LayerNorm), then the feed-forward; called by `LayerStack`."""

    config: AlbertConfig
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, head_mask, deterministic=True, init_cache=False,
                 output_attentions=False):
        cfg = self.config
        out, weights = FlaxAlbertAttention(cfg, self.dtype, name="attention")(
            hidden, attention_mask, None if head_mask is None else head_mask[self.layer_idx], deterministic)
        ffn = activation(cfg.hidden_act)(dense(cfg, cfg.intermediate_size, self.dtype, "ffn")(out))
        ffn = nn.Dropout(cfg.hidden_dropout_prob)(dense(cfg, cfg.hidden_size, self.dtype, "ffn_output")(ffn),
                                                  deterministic=deterministic)
        hidden = layer_norm(cfg.layer_norm_eps, self.dtype, "full_layer_layer_norm")(ffn + out)
        return hidden, weights if output_attentions else None, None


class FlaxAlbertAttention(nn.Module):
    config: AlbertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, layer_head_mask, deterministic):
        cfg = self.config
        out, weights = bidirectional_attention(self, hidden, attention_mask, layer_head_mask, deterministic,
                                               ("query", "key", "value"))
        out = dense(cfg, cfg.hidden_size, self.dtype, "dense")(out)
        out = nn.Dropout(cfg.hidden_dropout_prob)(out, deterministic=deterministic)
        return layer_norm(cfg.layer_norm_eps, self.dtype, "LayerNorm")(out + hidden), weights


class FlaxAlbertLayerGroup(nn.Module):
    """One group: `albert_layers/{0..inner_group_num-1}`."""

    config: AlbertConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, hidden, attention_mask, head_mask, deterministic, output_attentions, output_hidden_states):
        """-> the group's output, each inner layer's output, each inner layer's attention weights."""
        cfg = self.config
        layers = LayerStack(FlaxAlbertLayer, cfg.inner_group_num, {"config": cfg, "dtype": self.dtype},
                            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                            name="albert_layers")
        out, inputs, attentions, _ = layers(hidden, (attention_mask, head_mask), deterministic, False,
                                            output_attentions, output_hidden_states)
        return out, (inputs[1:] + (out,)) if output_hidden_states else (), attentions or ()


class FlaxAlbertTransformer(nn.Module):
    """`embedding_hidden_mapping_in`, then layer i runs group i * num_hidden_groups // num_hidden_layers."""

    config: AlbertConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, hidden, attention_mask, head_mask=None, deterministic=True, output_attentions=False,
                 output_hidden_states=False):
        cfg = self.config
        check_head_mask_scan(cfg, head_mask)
        hidden = dense(cfg, cfg.hidden_size, self.dtype, "embedding_hidden_mapping_in")(hidden)
        groups = FlaxAlbertLayerGroups(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy,
                                       name="albert_layer_groups")
        return groups(hidden, attention_mask, head_mask, deterministic, output_attentions, output_hidden_states)


class FlaxAlbertLayerGroups(nn.Module):
    """Hidden states: the mapped embeddings, then every inner layer's output (as transformers 5 records them;
    with one layer per group, as released checkpoints have, that is one per pass as in 4.x)."""

    config: AlbertConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, hidden, attention_mask, head_mask, deterministic, output_attentions, output_hidden_states):
        cfg = self.config
        groups = [FlaxAlbertLayerGroup(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy, name=str(g))
                  for g in range(cfg.num_hidden_groups)]
        all_hidden, all_attentions = (hidden,), ()
        for i in range(cfg.num_hidden_layers):
            hidden, states, attentions = groups[i * cfg.num_hidden_groups // cfg.num_hidden_layers](
                hidden, attention_mask, head_mask, deterministic, output_attentions, output_hidden_states)
            all_hidden += states
            all_attentions += attentions
        return hidden, all_hidden if output_hidden_states else None, all_attentions if output_attentions else None


class FlaxAlbertModule(nn.Module):
    config: AlbertConfig
    dtype: jnp.dtype = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    def setup(self):
        cfg = self.config
        self.embeddings = Embeddings(cfg, self.dtype, features=cfg.embedding_size)
        self.encoder = FlaxAlbertTransformer(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy)
        if self.add_pooling_layer:
            self.pooler = dense(cfg, cfg.hidden_size, self.dtype)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 deterministic=True, output_attentions=False, output_hidden_states=False, return_dict=True):
        if attention_mask is None:
            attention_mask = jnp.ones_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, deterministic=deterministic)
        hidden, all_hidden, attentions = self.encoder(hidden, attention_mask, head_mask, deterministic,
                                                      output_attentions, output_hidden_states)
        pooled = jnp.tanh(self.pooler(hidden[:, 0])) if self.add_pooling_layer else None
        out = FlaxBaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden,
                                             attentions=attentions)
        return out if return_dict else out.to_tuple()

    def word_embeddings(self) -> jax.Array:
        return self.embeddings.variables["params"]["word_embeddings"]["embedding"]  # [V, E]


class _Albert:
    base_module: ClassVar = FlaxAlbertModule
    base_name: ClassVar[str] = "albert"


class _AlbertLM(_Albert):
    def setup_head(self):
        self.predictions = heads.PredictionHead(self.config, self.dtype, features=self.config.embedding_size,
                                                nested=False)

    def lm_logits(self, hidden):
        return self.predictions(hidden, self.shared_embedding())


class FlaxAlbertSOPHead(nn.Module):
    """`sop_classifier`: sentence-order logits [B, 2] from the pooled [CLS]."""

    config: AlbertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pooled, deterministic=True):
        pooled = nn.Dropout(self.config.classifier_dropout_prob)(pooled, deterministic=deterministic)
        return dense(self.config, 2, self.dtype, "classifier")(pooled)


class FlaxAlbertForPreTrainingModule(_AlbertLM, heads.EncoderHeadModule):
    pooling: ClassVar[bool] = True

    def setup_head(self):
        super().setup_head()
        self.sop_classifier = FlaxAlbertSOPHead(self.config, self.dtype)

    def head(self, outputs, deterministic):
        return FlaxAlbertForPreTrainingOutput(
            prediction_logits=self.lm_logits(outputs.last_hidden_state),
            sop_logits=self.sop_classifier(outputs.pooler_output, deterministic),
            hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )


class FlaxAlbertForMaskedLMModule(_AlbertLM, heads.MaskedLMModule):
    pass


class FlaxAlbertForSequenceClassificationModule(_Albert, heads.SequenceClassificationModule):
    pass


class FlaxAlbertForMultipleChoiceModule(_Albert, heads.MultipleChoiceModule):
    pass


class FlaxAlbertForTokenClassificationModule(_Albert, heads.TokenClassificationModule):
    pass


class FlaxAlbertForQuestionAnsweringModule(_Albert, heads.QuestionAnsweringModule):
    pass


# --- the model classes ---------------------------------------------------------------------------
class FlaxAlbertPreTrainedModel(FlaxEncoderPreTrainedModel):
    config_class = AlbertConfig
    base_model_prefix = "albert"
    _keys_to_ignore_on_load_unexpected = FlaxEncoderPreTrainedModel._keys_to_ignore_on_load_unexpected + (
        r"predictions\.decoder\.bias$", r"pooler")
    _tied_weights_keys = {"predictions.decoder.weight": "albert.embeddings.word_embeddings.weight"}

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        return self._encoder_call(
            input_ids, attention_mask, token_type_ids, position_ids, params=params, dropout_rng=dropout_rng,
            train=train, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=return_dict,
        )


class FlaxAlbertModel(FlaxAlbertPreTrainedModel):
    module_class = FlaxAlbertModule


class FlaxAlbertForPreTraining(FlaxAlbertPreTrainedModel):
    module_class = FlaxAlbertForPreTrainingModule
    loss_task = "sentence-order-pretraining"


class FlaxAlbertForMaskedLM(FlaxAlbertPreTrainedModel):
    module_class = FlaxAlbertForMaskedLMModule


class FlaxAlbertForSequenceClassification(FlaxAlbertPreTrainedModel):
    module_class = FlaxAlbertForSequenceClassificationModule


class FlaxAlbertForMultipleChoice(FlaxAlbertPreTrainedModel):
    module_class = FlaxAlbertForMultipleChoiceModule


class FlaxAlbertForTokenClassification(FlaxAlbertPreTrainedModel):
    module_class = FlaxAlbertForTokenClassificationModule


class FlaxAlbertForQuestionAnswering(FlaxAlbertPreTrainedModel):
    module_class = FlaxAlbertForQuestionAnsweringModule


__all__ = [
    "FlaxAlbertForMaskedLM",
    "FlaxAlbertForMultipleChoice",
    "FlaxAlbertForPreTraining",
    "FlaxAlbertForQuestionAnswering",
    "FlaxAlbertForSequenceClassification",
    "FlaxAlbertForTokenClassification",
    "FlaxAlbertModel",
    "FlaxAlbertPreTrainedModel",
]

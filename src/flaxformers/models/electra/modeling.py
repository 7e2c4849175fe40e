"""ELECTRA in Flax: the base model and the seven heads of transformers 4.x Flax, with its param names.

ELECTRA is BERT's encoder without a pooler, with factorised embeddings (`embedding_size`, projected by
`embeddings_project`). What is its own: the discriminator (`discriminator_predictions`: one
replaced-token logit per token), the generator's masked-LM head (`generator_predictions` to the
embedding width, `generator_lm_head` tied to the word embeddings), a gelu classification head and
a sequence summary for multiple choice.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp

from flaxformers.encoder_models import FlaxEncoderPreTrainedModel
from flaxformers.models.electra.configuration import ElectraConfig
from flaxformers.nn import heads
from flaxformers.nn.encoder import EncoderLayout, EncoderModel, dense
from flaxformers.nn.layers import activation
from flaxformers.outputs import output_class

FlaxElectraForPreTrainingOutput = output_class("FlaxElectraForPreTrainingOutput", "logits", "hidden_states",
                                               "attentions")


class FlaxElectraModule(EncoderModel):
    layout: ClassVar[EncoderLayout] = EncoderLayout(pooler=None)


class FlaxElectraGeneratorPredictions(nn.Module):
    config: ElectraConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        return heads.transform(hidden, cfg, cfg.embedding_size, cfg.hidden_act, self.dtype)  # [B, T, E]


class FlaxElectraDiscriminatorPredictions(nn.Module):
    config: ElectraConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        hidden = activation(cfg.hidden_act)(dense(cfg, cfg.hidden_size, self.dtype, "dense")(hidden))
        return dense(cfg, 1, self.dtype, "dense_prediction")(hidden).squeeze(-1)  # [B, T]


class _Electra:
    base_module: ClassVar = FlaxElectraModule
    base_name: ClassVar[str] = "electra"


class _ElectraGenerator(_Electra):
    def setup_head(self):
        self.generator_predictions = FlaxElectraGeneratorPredictions(self.config, self.dtype)
        self.generator_lm_head = heads.VocabProjection(self.config, self.dtype)

    def lm_logits(self, hidden):
        return self.generator_lm_head(self.generator_predictions(hidden), self.shared_embedding())


class FlaxElectraForMaskedLMModule(_ElectraGenerator, heads.MaskedLMModule):
    pass


class FlaxElectraForCausalLMModule(_ElectraGenerator, heads.CausalLMModule):
    pass


class FlaxElectraForPreTrainingModule(_Electra, heads.EncoderHeadModule):
    def setup_head(self):
        self.discriminator_predictions = FlaxElectraDiscriminatorPredictions(self.config, self.dtype)

    def head(self, outputs, deterministic):
        return FlaxElectraForPreTrainingOutput(logits=self.discriminator_predictions(outputs.last_hidden_state),
                                               hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxElectraForSequenceClassificationModule(_Electra, heads.SequenceClassificationModule):
    classifier_act: ClassVar[str] = "gelu"


class FlaxElectraForMultipleChoiceModule(_Electra, heads.MultipleChoiceModule):
    def setup_head(self):
        self.sequence_summary = heads.SequenceSummary(self.config, self.dtype)
        self.classifier = dense(self.config, 1, self.dtype)

    def summary(self, outputs, deterministic):
        return self.sequence_summary(outputs.last_hidden_state, deterministic)


class FlaxElectraForTokenClassificationModule(_Electra, heads.TokenClassificationModule):
    pass


class FlaxElectraForQuestionAnsweringModule(_Electra, heads.QuestionAnsweringModule):
    pass


# --- the model classes ---------------------------------------------------------------------------
class FlaxElectraPreTrainedModel(FlaxEncoderPreTrainedModel):
    config_class = ElectraConfig
    base_model_prefix = "electra"
    _tied_weights_keys = {"generator_lm_head.weight": "electra.embeddings.word_embeddings.weight"}


class FlaxElectraModel(FlaxElectraPreTrainedModel):
    module_class = FlaxElectraModule
    _takes_encoder_states = True


class FlaxElectraForPreTraining(FlaxElectraPreTrainedModel):
    module_class = FlaxElectraForPreTrainingModule
    loss_task = "replaced-token-detection"


class FlaxElectraForMaskedLM(FlaxElectraPreTrainedModel):
    module_class = FlaxElectraForMaskedLMModule


class FlaxElectraForSequenceClassification(FlaxElectraPreTrainedModel):
    module_class = FlaxElectraForSequenceClassificationModule


class FlaxElectraForMultipleChoice(FlaxElectraPreTrainedModel):
    module_class = FlaxElectraForMultipleChoiceModule


class FlaxElectraForTokenClassification(FlaxElectraPreTrainedModel):
    module_class = FlaxElectraForTokenClassificationModule


class FlaxElectraForQuestionAnswering(FlaxElectraPreTrainedModel):
    module_class = FlaxElectraForQuestionAnsweringModule


class FlaxElectraForCausalLM(FlaxElectraPreTrainedModel):
    module_class = FlaxElectraForCausalLMModule
    _takes_encoder_states = True
    is_causal_lm = True


__all__ = [
    "FlaxElectraForCausalLM",
    "FlaxElectraForMaskedLM",
    "FlaxElectraForMultipleChoice",
    "FlaxElectraForPreTraining",
    "FlaxElectraForQuestionAnswering",
    "FlaxElectraForSequenceClassification",
    "FlaxElectraForTokenClassification",
    "FlaxElectraModel",
    "FlaxElectraPreTrainedModel",
]

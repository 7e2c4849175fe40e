"""RoBERTa-PreLayerNorm in Flax: RoBERTa with LayerNorm before attention and feed-forward, and one after
the last block (`roberta_prelayernorm/LayerNorm`); its base model lives under `roberta_prelayernorm`."""

from __future__ import annotations

from typing import ClassVar

from flaxformers.models.roberta import modeling as roberta
from flaxformers.models.roberta_prelayernorm.configuration import RobertaPreLayerNormConfig
from flaxformers.nn.encoder import EncoderLayout, EncoderModel


class FlaxRobertaPreLayerNormModule(EncoderModel):
    layout: ClassVar[EncoderLayout] = EncoderLayout(padding_positions=True, pre_norm=True)


class _PreLayerNorm:
    base_module: ClassVar = FlaxRobertaPreLayerNormModule
    base_name: ClassVar[str] = "roberta_prelayernorm"


class FlaxRobertaPreLayerNormForMaskedLMModule(_PreLayerNorm, roberta.FlaxRobertaForMaskedLMModule):
    pass


class FlaxRobertaPreLayerNormForCausalLMModule(_PreLayerNorm, roberta.FlaxRobertaForCausalLMModule):
    pass


class FlaxRobertaPreLayerNormForSequenceClassificationModule(
        _PreLayerNorm, roberta.FlaxRobertaForSequenceClassificationModule):
    pass


class FlaxRobertaPreLayerNormForMultipleChoiceModule(_PreLayerNorm, roberta.FlaxRobertaForMultipleChoiceModule):
    pass


class FlaxRobertaPreLayerNormForTokenClassificationModule(
        _PreLayerNorm, roberta.FlaxRobertaForTokenClassificationModule):
    pass


class FlaxRobertaPreLayerNormForQuestionAnsweringModule(
        _PreLayerNorm, roberta.FlaxRobertaForQuestionAnsweringModule):
    pass


class FlaxRobertaPreLayerNormPreTrainedModel(roberta.FlaxRobertaPreTrainedModel):
    config_class = RobertaPreLayerNormConfig
    base_model_prefix = "roberta_prelayernorm"
    _tied_weights_keys = {"lm_head.decoder.weight": "roberta_prelayernorm.embeddings.word_embeddings.weight"}


class FlaxRobertaPreLayerNormModel(FlaxRobertaPreLayerNormPreTrainedModel):
    module_class = FlaxRobertaPreLayerNormModule
    _takes_encoder_states = True


class FlaxRobertaPreLayerNormForMaskedLM(FlaxRobertaPreLayerNormPreTrainedModel):
    module_class = FlaxRobertaPreLayerNormForMaskedLMModule


class FlaxRobertaPreLayerNormForSequenceClassification(FlaxRobertaPreLayerNormPreTrainedModel):
    module_class = FlaxRobertaPreLayerNormForSequenceClassificationModule


class FlaxRobertaPreLayerNormForMultipleChoice(FlaxRobertaPreLayerNormPreTrainedModel):
    module_class = FlaxRobertaPreLayerNormForMultipleChoiceModule


class FlaxRobertaPreLayerNormForTokenClassification(FlaxRobertaPreLayerNormPreTrainedModel):
    module_class = FlaxRobertaPreLayerNormForTokenClassificationModule


class FlaxRobertaPreLayerNormForQuestionAnswering(FlaxRobertaPreLayerNormPreTrainedModel):
    module_class = FlaxRobertaPreLayerNormForQuestionAnsweringModule


class FlaxRobertaPreLayerNormForCausalLM(FlaxRobertaPreLayerNormPreTrainedModel):
    module_class = FlaxRobertaPreLayerNormForCausalLMModule
    _takes_encoder_states = True
    is_causal_lm = True


__all__ = [
    "FlaxRobertaPreLayerNormForCausalLM",
    "FlaxRobertaPreLayerNormForMaskedLM",
    "FlaxRobertaPreLayerNormForMultipleChoice",
    "FlaxRobertaPreLayerNormForQuestionAnswering",
    "FlaxRobertaPreLayerNormForSequenceClassification",
    "FlaxRobertaPreLayerNormForTokenClassification",
    "FlaxRobertaPreLayerNormModel",
    "FlaxRobertaPreLayerNormPreTrainedModel",
]

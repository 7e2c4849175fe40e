"""XLM-RoBERTa in Flax: RoBERTa's modules and heads under XLM-RoBERTa's class names and config."""

from __future__ import annotations

from flaxformers.models.roberta import modeling as roberta
from flaxformers.models.xlm_roberta.configuration import XLMRobertaConfig


class FlaxXLMRobertaPreTrainedModel(roberta.FlaxRobertaPreTrainedModel):
    config_class = XLMRobertaConfig


class FlaxXLMRobertaModel(FlaxXLMRobertaPreTrainedModel, roberta.FlaxRobertaModel):
    pass


class FlaxXLMRobertaForMaskedLM(FlaxXLMRobertaPreTrainedModel, roberta.FlaxRobertaForMaskedLM):
    pass


class FlaxXLMRobertaForSequenceClassification(FlaxXLMRobertaPreTrainedModel,
                                              roberta.FlaxRobertaForSequenceClassification):
    pass


class FlaxXLMRobertaForMultipleChoice(FlaxXLMRobertaPreTrainedModel, roberta.FlaxRobertaForMultipleChoice):
    pass


class FlaxXLMRobertaForTokenClassification(FlaxXLMRobertaPreTrainedModel, roberta.FlaxRobertaForTokenClassification):
    pass


class FlaxXLMRobertaForQuestionAnswering(FlaxXLMRobertaPreTrainedModel, roberta.FlaxRobertaForQuestionAnswering):
    pass


class FlaxXLMRobertaForCausalLM(FlaxXLMRobertaPreTrainedModel, roberta.FlaxRobertaForCausalLM):
    pass


__all__ = [
    "FlaxXLMRobertaForCausalLM",
    "FlaxXLMRobertaForMaskedLM",
    "FlaxXLMRobertaForMultipleChoice",
    "FlaxXLMRobertaForQuestionAnswering",
    "FlaxXLMRobertaForSequenceClassification",
    "FlaxXLMRobertaForTokenClassification",
    "FlaxXLMRobertaModel",
    "FlaxXLMRobertaPreTrainedModel",
]

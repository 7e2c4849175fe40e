from flaxformers.models.bert.configuration import BertConfig
from flaxformers.models.bert.modeling import (
    FlaxBertForCausalLM,
    FlaxBertForMaskedLM,
    FlaxBertForMultipleChoice,
    FlaxBertForNextSentencePrediction,
    FlaxBertForPreTraining,
    FlaxBertForQuestionAnswering,
    FlaxBertForSequenceClassification,
    FlaxBertForTokenClassification,
    FlaxBertModel,
    FlaxBertPreTrainedModel,
)

__all__ = [
    "BertConfig",
    "FlaxBertModel",
    "FlaxBertForPreTraining",
    "FlaxBertForMaskedLM",
    "FlaxBertForNextSentencePrediction",
    "FlaxBertForSequenceClassification",
    "FlaxBertForMultipleChoice",
    "FlaxBertForTokenClassification",
    "FlaxBertForQuestionAnswering",
    "FlaxBertForCausalLM",
    "FlaxBertPreTrainedModel",
]

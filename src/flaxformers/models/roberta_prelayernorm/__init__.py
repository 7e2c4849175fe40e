"""RoBERTa-PreLayerNorm: RoBERTa with pre-LayerNorm blocks. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bert import ENCODER_PARTITION_RULES
from flaxformers.models.roberta import TOKENIZER
from flaxformers.registry import Family, ModelType

_HEADS = {
    "base": "FlaxRobertaPreLayerNormModel",
    "causal-lm": "FlaxRobertaPreLayerNormForCausalLM",
    "masked-lm": "FlaxRobertaPreLayerNormForMaskedLM",
    "sequence-classification": "FlaxRobertaPreLayerNormForSequenceClassification",
    "multiple-choice": "FlaxRobertaPreLayerNormForMultipleChoice",
    "token-classification": "FlaxRobertaPreLayerNormForTokenClassification",
    "question-answering": "FlaxRobertaPreLayerNormForQuestionAnswering",
}

FAMILY = Family(
    name="roberta_prelayernorm",
    model_types={"roberta-prelayernorm": ModelType("RobertaPreLayerNormConfig", _HEADS)},
    exports={
        "configuration": ("RobertaPreLayerNormConfig",),
        "modeling": (*_HEADS.values(), "FlaxRobertaPreLayerNormPreTrainedModel"),
    },
    partition_rules=ENCODER_PARTITION_RULES,
    tokenizer=TOKENIZER,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

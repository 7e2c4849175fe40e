"""ELECTRA: the base model and its seven heads, on BERT's encoder; BERT's WordPiece tokenizer. The family's
declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bert import ENCODER_PARTITION_RULES
from flaxformers.models.bert import FAMILY as BERT
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxElectraModel",
    "causal-lm": "FlaxElectraForCausalLM",
    "masked-lm": "FlaxElectraForMaskedLM",
    "pretraining": "FlaxElectraForPreTraining",
    "sequence-classification": "FlaxElectraForSequenceClassification",
    "multiple-choice": "FlaxElectraForMultipleChoice",
    "token-classification": "FlaxElectraForTokenClassification",
    "question-answering": "FlaxElectraForQuestionAnswering",
}

FAMILY = Family(
    name="electra",
    model_types={"electra": ModelType("ElectraConfig", _HEADS)},
    exports={
        "configuration": ("ElectraConfig",),
        "modeling": (*_HEADS.values(), "FlaxElectraPreTrainedModel"),
    },
    partition_rules=ENCODER_PARTITION_RULES,
    tokenizer=TokenizerHint(BERT.tokenizer.files, BERT.tokenizer.builder, classes=("ElectraTokenizer", "ElectraTokenizerFast"), by_files=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

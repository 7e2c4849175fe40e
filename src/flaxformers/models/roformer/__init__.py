"""RoFormer: the base model and its five heads, BERT's encoder with rotary positions. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bert import ENCODER_PARTITION_RULES
from flaxformers.models.bert import FAMILY as BERT
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxRoFormerModel",
    "masked-lm": "FlaxRoFormerForMaskedLM",
    "sequence-classification": "FlaxRoFormerForSequenceClassification",
    "multiple-choice": "FlaxRoFormerForMultipleChoice",
    "token-classification": "FlaxRoFormerForTokenClassification",
    "question-answering": "FlaxRoFormerForQuestionAnswering",
}

FAMILY = Family(
    name="roformer",
    model_types={"roformer": ModelType("RoFormerConfig", _HEADS)},
    exports={
        "configuration": ("RoFormerConfig",),
        "modeling": (*_HEADS.values(), "FlaxRoFormerPreTrainedModel"),
    },
    partition_rules=ENCODER_PARTITION_RULES,
    # WordPiece; transformers' jieba pre-tokenizer for Chinese cannot be written in tokenizer.json.
    tokenizer=TokenizerHint(BERT.tokenizer.files, BERT.tokenizer.builder,
                            classes=("RoFormerTokenizer", "RoFormerTokenizerFast"), by_files=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

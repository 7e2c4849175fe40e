"""BigBird: the base model and its seven heads, BERT's encoder with block-sparse attention. The family's
declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bert import ENCODER_PARTITION_RULES
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxBigBirdModel",
    "causal-lm": "FlaxBigBirdForCausalLM",
    "masked-lm": "FlaxBigBirdForMaskedLM",
    "pretraining": "FlaxBigBirdForPreTraining",
    "sequence-classification": "FlaxBigBirdForSequenceClassification",
    "multiple-choice": "FlaxBigBirdForMultipleChoice",
    "token-classification": "FlaxBigBirdForTokenClassification",
    "question-answering": "FlaxBigBirdForQuestionAnswering",
}

FAMILY = Family(
    name="big_bird",
    model_types={"big_bird": ModelType("BigBirdConfig", _HEADS)},
    exports={
        "configuration": ("BigBirdConfig",),
        "modeling": (*_HEADS.values(), "FlaxBigBirdPreTrainedModel"),
        "tokenization": ("big_bird_tokenizer",),
    },
    partition_rules=ENCODER_PARTITION_RULES,
    tokenizer=TokenizerHint(("spiece.model",), "flaxformers.models.big_bird.tokenization:big_bird_tokenizer",
                            classes=("BigBirdTokenizer", "BigBirdTokenizerFast"), token_type_ids=False, by_files=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""LongT5: T5 with a local or transient-global attention encoder for long inputs. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.t5 import T5_PARTITION_RULES, T5_TOKENIZER
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {"base": "FlaxLongT5Model", "seq2seq-lm": "FlaxLongT5ForConditionalGeneration"}

FAMILY = Family(
    name="longt5",
    model_types={"longt5": ModelType("LongT5Config", _HEADS)},
    exports={
        "configuration": ("LongT5Config",),
        "modeling": (*_HEADS.values(), "FlaxLongT5PreTrainedModel"),
    },
    partition_rules=T5_PARTITION_RULES,
    # T5's tokenizer, by model_type (its classes already point to the T5 family)
    tokenizer=TokenizerHint(T5_TOKENIZER.files, T5_TOKENIZER.builder, by_files=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

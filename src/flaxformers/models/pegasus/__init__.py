"""Pegasus (summarisation): BART-like, pre-norm, sinusoidal positions. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bart import SEQ2SEQ_PARTITION_RULES
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {"base": "FlaxPegasusModel", "seq2seq-lm": "FlaxPegasusForConditionalGeneration"}

FAMILY = Family(
    name="pegasus",
    model_types={"pegasus": ModelType("PegasusConfig", _HEADS)},
    exports={
        "configuration": ("PegasusConfig",),
        "modeling": (*_HEADS.values(), "FlaxPegasusPreTrainedModel"),
        "tokenization": ("pegasus_tokenizer",),
    },
    partition_rules=SEQ2SEQ_PARTITION_RULES,
    # spiece.model is ALBERT's file name too: found by tokenizer_class or model_type only.
    tokenizer=TokenizerHint(("spiece.model",), "flaxformers.models.pegasus.tokenization:pegasus_tokenizer",
                            classes=("PegasusTokenizer", "PegasusTokenizerFast"), by_files=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

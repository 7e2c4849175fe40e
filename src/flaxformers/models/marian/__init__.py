"""Marian (OPUS-MT translation models): BART-like with sinusoidal positions. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bart import SEQ2SEQ_PARTITION_RULES
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {"base": "FlaxMarianModel", "seq2seq-lm": "FlaxMarianMTModel"}

FAMILY = Family(
    name="marian",
    model_types={"marian": ModelType("MarianConfig", _HEADS)},
    exports={
        "configuration": ("MarianConfig",),
        "modeling": (*_HEADS.values(), "FlaxMarianPreTrainedModel"),
        "tokenization": ("MarianTokenizer", "marian_tokenizer"),
    },
    partition_rules=SEQ2SEQ_PARTITION_RULES,
    tokenizer=TokenizerHint(("source.spm", "target.spm", "vocab.json"),
                            "flaxformers.models.marian.tokenization:marian_tokenizer",
                            optional_files=("target_vocab.json",), classes=("MarianTokenizer",)),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

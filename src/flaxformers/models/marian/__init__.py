"""Marian (OPUS-MT translation models): BART-like with sinusoidal positions. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bart import SEQ2SEQ_PARTITION_RULES
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxMarianModel", "seq2seq-lm": "FlaxMarianMTModel"}

FAMILY = Family(
    name="marian",
    model_types={"marian": ModelType("MarianConfig", _HEADS)},
    exports={
        "configuration": ("MarianConfig",),
        "modeling": (*_HEADS.values(), "FlaxMarianPreTrainedModel"),
    },
    partition_rules=SEQ2SEQ_PARTITION_RULES,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

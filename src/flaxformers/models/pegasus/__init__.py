"""Pegasus (summarisation): BART-like, pre-norm, sinusoidal positions. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bart import SEQ2SEQ_PARTITION_RULES
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxPegasusModel", "seq2seq-lm": "FlaxPegasusForConditionalGeneration"}

FAMILY = Family(
    name="pegasus",
    model_types={"pegasus": ModelType("PegasusConfig", _HEADS)},
    exports={
        "configuration": ("PegasusConfig",),
        "modeling": (*_HEADS.values(), "FlaxPegasusPreTrainedModel"),
    },
    partition_rules=SEQ2SEQ_PARTITION_RULES,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

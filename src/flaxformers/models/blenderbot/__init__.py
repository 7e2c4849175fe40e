"""Blenderbot (open-domain chat): BART-like, pre-norm. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bart import SEQ2SEQ_PARTITION_RULES
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxBlenderbotModel", "seq2seq-lm": "FlaxBlenderbotForConditionalGeneration"}

FAMILY = Family(
    name="blenderbot",
    model_types={"blenderbot": ModelType("BlenderbotConfig", _HEADS)},
    exports={
        "configuration": ("BlenderbotConfig",),
        "modeling": (*_HEADS.values(), "FlaxBlenderbotPreTrainedModel"),
    },
    partition_rules=SEQ2SEQ_PARTITION_RULES,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""BlenderbotSmall (open-domain chat, 90M): BART-like, post-norm. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bart import SEQ2SEQ_PARTITION_RULES
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxBlenderbotSmallModel", "seq2seq-lm": "FlaxBlenderbotSmallForConditionalGeneration"}

FAMILY = Family(
    name="blenderbot_small",
    model_types={"blenderbot-small": ModelType("BlenderbotSmallConfig", _HEADS)},
    exports={
        "configuration": ("BlenderbotSmallConfig",),
        "modeling": (*_HEADS.values(), "FlaxBlenderbotSmallPreTrainedModel"),
    },
    partition_rules=SEQ2SEQ_PARTITION_RULES,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

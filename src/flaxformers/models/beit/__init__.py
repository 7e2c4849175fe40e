"""BEiT: the base model, masked image modeling and the image classifier. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.vit import ENCODER_BLOCK_PARTITION_RULES
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxBeitModel", "image-classification": "FlaxBeitForImageClassification"}

FAMILY = Family(
    name="beit",
    model_types={"beit": ModelType("BeitConfig", _HEADS)},
    exports={
        "configuration": ("BeitConfig",),
        "modeling": (*_HEADS.values(), "FlaxBeitForMaskedImageModeling", "FlaxBeitModelOutputWithPooling",
                     "FlaxBeitPreTrainedModel"),
    },
    partition_rules=ENCODER_BLOCK_PARTITION_RULES,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

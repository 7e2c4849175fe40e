"""BEiT: the base model, masked image modeling, the image classifier and the image processor. The family's declaration."""

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
        "processing": ("BeitImageProcessor",),
    },
    partition_rules=ENCODER_BLOCK_PARTITION_RULES,
    image_processor="BeitImageProcessor",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

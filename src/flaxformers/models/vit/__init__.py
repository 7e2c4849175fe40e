"""ViT: the base model, the image classifier and the image processor. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

# Sharding of the encoder blocks (`nn.vision.EncoderBlock`, whose names BEiT and DINOv2 share):
# column-parallel in-projections, row-parallel out-projections.
ENCODER_BLOCK_PARTITION_RULES: tuple[tuple[str, tuple], ...] = (
    (r"attention/attention/(query|key|value)/kernel$", ("fsdp", "tensor")),
    (r"attention/attention/(query|key|value)/bias$", ("tensor",)),
    (r"intermediate/dense/kernel$", ("fsdp", "tensor")),
    (r"intermediate/dense/bias$", ("tensor",)),
    (r"(attention/output|\d+/output)/dense/kernel$", ("tensor", "fsdp")),
)
_HEADS = {"base": "FlaxViTModel", "image-classification": "FlaxViTForImageClassification"}

FAMILY = Family(
    name="vit",
    model_types={"vit": ModelType("ViTConfig", _HEADS)},
    exports={"configuration": ("ViTConfig",), "modeling": (*_HEADS.values(), "FlaxViTPreTrainedModel"),
             "processing": ("ViTImageProcessor",)},
    partition_rules=ENCODER_BLOCK_PARTITION_RULES,
    image_processor="ViTImageProcessor",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

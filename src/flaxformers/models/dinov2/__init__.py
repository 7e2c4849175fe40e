"""DINOv2: the base model, the image classifier and the image processor. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.vit import ENCODER_BLOCK_PARTITION_RULES
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxDinov2Model", "image-classification": "FlaxDinov2ForImageClassification"}

FAMILY = Family(
    name="dinov2",
    model_types={"dinov2": ModelType("Dinov2Config", _HEADS)},
    exports={"configuration": ("Dinov2Config",), "modeling": (*_HEADS.values(), "FlaxDinov2PreTrainedModel"),
             "processing": ("BitImageProcessor",)},
    partition_rules=(
        *ENCODER_BLOCK_PARTITION_RULES,
        (r"mlp/(fc1|weights_in)/kernel$", ("fsdp", "tensor")),
        (r"mlp/(fc1|weights_in)/bias$", ("tensor",)),
        (r"mlp/(fc2|weights_out)/kernel$", ("tensor", "fsdp")),
    ),
    image_processor="BitImageProcessor",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""The vision-text dual encoder: a vision tower and a text tower of any family here. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="vision_text_dual_encoder",
    model_types={
        "vision-text-dual-encoder": ModelType("VisionTextDualEncoderConfig", {"base": "FlaxVisionTextDualEncoderModel"}),
    },
    exports={"configuration": ("VisionTextDualEncoderConfig",), "modeling": ("FlaxVisionTextDualEncoderModel",)},
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""The vision encoder-decoder: an image encoder and a text decoder of any family here (ViT into GPT-2).
The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="vision_encoder_decoder",
    model_types={
        "vision-encoder-decoder": ModelType(
            "VisionEncoderDecoderConfig",
            {"base": "FlaxVisionEncoderDecoderModel", "vision2seq": "FlaxVisionEncoderDecoderModel"}),
    },
    exports={"configuration": ("VisionEncoderDecoderConfig",), "modeling": ("FlaxVisionEncoderDecoderModel",)},
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""RegNet: the base model and the image classifier. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxRegNetModel", "image-classification": "FlaxRegNetForImageClassification"}

FAMILY = Family(
    name="regnet",
    model_types={"regnet": ModelType("RegNetConfig", _HEADS)},
    exports={"configuration": ("RegNetConfig",), "modeling": (*_HEADS.values(), "FlaxRegNetPreTrainedModel")},
    # convolution kernels [kh, kw, in, out]: output channels split across the tensor axis
    partition_rules=((r"convolution/kernel$", (None, None, "fsdp", "tensor")),),
    image_processor="ConvNextImageProcessor",  # ResNet's
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""ResNet: the base model and the image classifier. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxResNetModel", "image-classification": "FlaxResNetForImageClassification"}

FAMILY = Family(
    name="resnet",
    model_types={"resnet": ModelType("ResNetConfig", _HEADS)},
    exports={"configuration": ("ResNetConfig",), "modeling": (*_HEADS.values(), "FlaxResNetPreTrainedModel")},
    # convolution kernels [kh, kw, in, out]: output channels split across the tensor axis
    partition_rules=((r"convolution/kernel$", (None, None, "fsdp", "tensor")),),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

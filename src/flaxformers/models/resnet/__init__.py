"""ResNet: the base model, the image classifier and the image processor
(transformers' ConvNextImageProcessor, which RegNet uses too). The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

_HEADS = {"base": "FlaxResNetModel", "image-classification": "FlaxResNetForImageClassification"}

FAMILY = Family(
    name="resnet",
    model_types={"resnet": ModelType("ResNetConfig", _HEADS)},
    exports={"configuration": ("ResNetConfig",), "modeling": (*_HEADS.values(), "FlaxResNetPreTrainedModel"),
             "processing": ("ConvNextImageProcessor",)},
    # convolution kernels [kh, kw, in, out]: output channels split across the tensor axis
    partition_rules=((r"convolution/kernel$", (None, None, "fsdp", "tensor")),),
    image_processor="ConvNextImageProcessor",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""The encoder-decoder: a text encoder and a text decoder with cross-attention, each a model of this
library (BERT into BERT, RoBERTa into GPT-2, ...). The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="encoder_decoder",
    model_types={
        "encoder-decoder": ModelType(
            "EncoderDecoderConfig", {"base": "FlaxEncoderDecoderModel", "seq2seq-lm": "FlaxEncoderDecoderModel"}),
    },
    exports={"configuration": ("EncoderDecoderConfig",), "modeling": ("FlaxEncoderDecoderModel",)},
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""T5 and mT5 (mT5 is T5 with other defaults and its own class names). The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

_T5 = {"base": "FlaxT5Model", "seq2seq-lm": "FlaxT5ForConditionalGeneration"}
_MT5 = {"base": "FlaxMT5Model", "seq2seq-lm": "FlaxMT5ForConditionalGeneration"}

# Embeddings [V, D] split over the vocabulary (tensor) and the width (fsdp); Dense kernels are [in, out]:
# column-parallel q/k/v/wi, row-parallel o/wo.
T5_PARTITION_RULES = (
    (r"shared/embedding$", ("tensor", "fsdp")),
    (r"/(q|k|v|wi|wi_0|wi_1)/kernel$", ("fsdp", "tensor")),
    (r"/(o|wo)/kernel$", ("tensor", "fsdp")),
    (r"lm_head/kernel$", ("fsdp", "tensor")),
)

FAMILY = Family(
    name="t5",
    model_types={"t5": ModelType("T5Config", _T5), "mt5": ModelType("MT5Config", _MT5)},
    exports={
        "configuration": ("T5Config", "MT5Config"),
        "modeling": (*_T5.values(), "FlaxT5EncoderModel", "FlaxT5PreTrainedModel",
                     *_MT5.values(), "FlaxMT5EncoderModel", "FlaxMT5PreTrainedModel"),
    },
    partition_rules=T5_PARTITION_RULES,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""T5 and mT5 (mT5 is T5 with other defaults and its own class names). The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType, TokenizerHint

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

# spiece.model is ALBERT's file name too: found by tokenizer_class or model_type only.
T5_TOKENIZER = TokenizerHint(("spiece.model",), "flaxformers.models.t5.tokenization:t5_tokenizer",
                             classes=("T5Tokenizer", "T5TokenizerFast", "MT5Tokenizer", "MT5TokenizerFast"),
                             by_files=False)

FAMILY = Family(
    name="t5",
    model_types={"t5": ModelType("T5Config", _T5), "mt5": ModelType("MT5Config", _MT5)},
    exports={
        "configuration": ("T5Config", "MT5Config"),
        "modeling": (*_T5.values(), "FlaxT5EncoderModel", "FlaxT5PreTrainedModel",
                     *_MT5.values(), "FlaxMT5EncoderModel", "FlaxMT5PreTrainedModel"),
        "tokenization": ("t5_tokenizer",),
    },
    partition_rules=T5_PARTITION_RULES,
    tokenizer=T5_TOKENIZER,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""BART: the encoder-decoder, its four heads and the decoder alone. Its modeling module is the one
BART-like transformer that mBART, Marian, Pegasus, Blenderbot and BlenderbotSmall subclass."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

_HEADS = {
    "base": "FlaxBartModel",
    "seq2seq-lm": "FlaxBartForConditionalGeneration",
    "sequence-classification": "FlaxBartForSequenceClassification",
    "question-answering": "FlaxBartForQuestionAnswering",
    "causal-lm": "FlaxBartForCausalLM",
}

# Embeddings [V, D] split over the vocabulary (tensor) and the width (fsdp); Dense kernels are
# [in, out]: column-parallel q/k/v/fc1, row-parallel out_proj/fc2. Shared by the BART-like families.
SEQ2SEQ_PARTITION_RULES = (
    (r"(shared|embed_tokens)/embedding$", ("tensor", "fsdp")),
    (r"embed_positions/embedding$", (None, "fsdp")),
    (r"(q_proj|k_proj|v_proj|fc1)/kernel$", ("fsdp", "tensor")),
    (r"(q_proj|k_proj|v_proj|fc1)/bias$", ("tensor",)),
    (r"(out_proj|fc2)/kernel$", ("tensor", "fsdp")),
    (r"lm_head/kernel$", ("fsdp", "tensor")),
)

FAMILY = Family(
    name="bart",
    model_types={"bart": ModelType("BartConfig", _HEADS)},
    exports={
        "configuration": ("BartConfig",),
        "modeling": (*_HEADS.values(), "FlaxBartPreTrainedModel", "FlaxBartDecoderPreTrainedModel"),
    },
    partition_rules=SEQ2SEQ_PARTITION_RULES,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

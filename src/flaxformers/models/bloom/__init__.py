"""BLOOM: the family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="bloom",
    model_types={
        "bloom": ModelType("BloomConfig", {"base": "FlaxBloomModel", "causal-lm": "FlaxBloomForCausalLM"}),
    },
    exports={
        "configuration": ("BloomConfig",),
        "modeling": ("FlaxBloomModel", "FlaxBloomForCausalLM", "FlaxBloomPreTrainedModel"),
    },
    partition_rules=(
        (r"word_embeddings/embedding$", ("tensor", "fsdp")),
        (r"(query_key_value|dense_h_to_4h)/kernel$", ("fsdp", "tensor")),
        (r"(query_key_value|dense_h_to_4h)/bias$", ("tensor",)),
        (r"(self_attention/dense|dense_4h_to_h)/kernel$", ("tensor", "fsdp")),
        (r"lm_head/kernel$", ("fsdp", "tensor")),
    ),
    gguf="gguf",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

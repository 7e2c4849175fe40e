"""Qwen3: Qwen2 with q/k norms. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.llama import DECODER_PARTITION_RULES
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="qwen3",
    model_types={
        "qwen3": ModelType("Qwen3Config", {"base": "FlaxQwen3Model", "causal-lm": "FlaxQwen3ForCausalLM"}),
    },
    exports={
        "configuration": ("Qwen3Config",),
        "modeling": ("FlaxQwen3PreTrainedModel", "FlaxQwen3Model", "FlaxQwen3ForCausalLM"),
    },
    partition_rules=DECODER_PARTITION_RULES,
    gguf="gguf",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

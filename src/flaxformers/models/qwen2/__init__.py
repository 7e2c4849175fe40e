"""Qwen2: Llama with q/k/v biases and optional sliding-window layers. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.llama import DECODER_PARTITION_RULES
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="qwen2",
    model_types={
        "qwen2": ModelType("Qwen2Config", {"base": "FlaxQwen2Model", "causal-lm": "FlaxQwen2ForCausalLM"}),
    },
    exports={
        "configuration": ("Qwen2Config",),
        "modeling": ("FlaxQwen2PreTrainedModel", "FlaxQwen2Model", "FlaxQwen2ForCausalLM"),
    },
    partition_rules=DECODER_PARTITION_RULES,
    gguf="gguf",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

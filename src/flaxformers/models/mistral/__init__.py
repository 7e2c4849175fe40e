"""Mistral: Llama with a sliding window. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.llama import DECODER_PARTITION_RULES
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="mistral",
    model_types={
        "mistral": ModelType("MistralConfig", {"base": "FlaxMistralModel", "causal-lm": "FlaxMistralForCausalLM"}),
    },
    exports={
        "configuration": ("MistralConfig",),
        "modeling": ("FlaxMistralPreTrainedModel", "FlaxMistralModel", "FlaxMistralForCausalLM"),
    },
    partition_rules=DECODER_PARTITION_RULES,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

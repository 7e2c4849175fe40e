"""Llama: the family's declaration. Mistral and Qwen build on its config (their own packages)."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

# nn.Dense kernels are [in, out]: column-parallel q/k/v/gate/up, row-parallel o/down.
DECODER_PARTITION_RULES = (
    (r"embed_tokens/embedding$", ("tensor", "fsdp")),
    (r"(q_proj|k_proj|v_proj|gate_proj|up_proj)/kernel$", ("fsdp", "tensor")),
    (r"(q_proj|k_proj|v_proj|gate_proj|up_proj)/bias$", ("tensor",)),
    (r"(o_proj|down_proj)/kernel$", ("tensor", "fsdp")),
    (r"lm_head/kernel$", ("fsdp", "tensor")),
)

FAMILY = Family(
    name="llama",
    model_types={
        "llama": ModelType("LlamaConfig", {"base": "FlaxLlamaModel", "causal-lm": "FlaxLlamaForCausalLM"}),
    },
    exports={
        "configuration": ("LlamaConfig",),
        "modeling": ("FlaxLlamaPreTrainedModel", "FlaxLlamaModel", "FlaxLlamaForCausalLM"),
    },
    partition_rules=DECODER_PARTITION_RULES,
    gguf="gguf",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

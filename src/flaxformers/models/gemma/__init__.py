"""Gemma, Gemma 2 and Gemma 3 (text): one module under three configs. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="gemma",
    model_types={
        "gemma": ModelType("GemmaConfig", {"base": "FlaxGemmaModel", "causal-lm": "FlaxGemmaForCausalLM"}),
        "gemma2": ModelType("Gemma2Config", {"base": "FlaxGemma2Model", "causal-lm": "FlaxGemma2ForCausalLM"}),
        "gemma3_text": ModelType("Gemma3TextConfig", {"base": "FlaxGemma3Model", "causal-lm": "FlaxGemma3ForCausalLM"}),
    },
    exports={
        "configuration": ("GemmaConfig", "Gemma2Config", "Gemma3TextConfig"),
        "modeling": (
            "FlaxGemmaPreTrainedModel", "FlaxGemmaModel", "FlaxGemmaForCausalLM",
            "FlaxGemma2Model", "FlaxGemma2ForCausalLM", "FlaxGemma3Model", "FlaxGemma3ForCausalLM",
        ),
    },
    # nn.Dense kernels are [in, out]: column-parallel q/k/v/gate/up, row-parallel o/down.
    partition_rules=(
        (r"embed_tokens/embedding$", ("tensor", "fsdp")),
        (r"(q_proj|k_proj|v_proj|gate_proj|up_proj)/kernel$", ("fsdp", "tensor")),
        (r"(q_proj|k_proj|v_proj)/bias$", ("tensor",)),
        (r"(o_proj|down_proj)/kernel$", ("tensor", "fsdp")),
        (r"lm_head/kernel$", ("fsdp", "tensor")),
    ),
    gguf="gguf",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

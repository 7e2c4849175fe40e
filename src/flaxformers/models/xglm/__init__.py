"""XGLM: the family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="xglm",
    model_types={
        "xglm": ModelType("XGLMConfig", {"base": "FlaxXGLMModel", "causal-lm": "FlaxXGLMForCausalLM"}),
    },
    exports={
        "configuration": ("XGLMConfig",),
        "modeling": ("FlaxXGLMModel", "FlaxXGLMForCausalLM", "FlaxXGLMPreTrainedModel"),
    },
    # nn.Dense kernels are [in, out]: column-parallel q/k/v and fc1, row-parallel out_proj and fc2.
    partition_rules=(
        (r"embed_tokens/embedding$", ("tensor", "fsdp")),
        (r"(q_proj|k_proj|v_proj|fc1)/kernel$", ("fsdp", "tensor")),
        (r"(q_proj|k_proj|v_proj|fc1)/bias$", ("tensor",)),
        (r"(out_proj|fc2)/kernel$", ("tensor", "fsdp")),
        (r"lm_head/kernel$", ("fsdp", "tensor")),
    ),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

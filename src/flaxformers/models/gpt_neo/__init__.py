"""GPT-Neo: the family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="gpt_neo",
    model_types={
        "gpt_neo": ModelType("GPTNeoConfig", {"base": "FlaxGPTNeoModel", "causal-lm": "FlaxGPTNeoForCausalLM"}),
    },
    exports={
        "configuration": ("GPTNeoConfig",),
        "modeling": ("FlaxGPTNeoModel", "FlaxGPTNeoForCausalLM", "FlaxGPTNeoPreTrainedModel"),
    },
    # nn.Dense kernels are [in, out]: column-parallel q/k/v and c_fc, row-parallel out_proj and c_proj.
    partition_rules=(
        (r"wte/embedding$", ("tensor", "fsdp")),
        (r"wpe/embedding$", (None, "fsdp")),
        (r"(q_proj|k_proj|v_proj|c_fc)/kernel$", ("fsdp", "tensor")),
        (r"c_fc/bias$", ("tensor",)),
        (r"(out_proj|c_proj)/kernel$", ("tensor", "fsdp")),
        (r"lm_head/kernel$", ("fsdp", "tensor")),
    ),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

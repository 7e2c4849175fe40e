"""GPT-J: the family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="gptj",
    model_types={
        "gptj": ModelType("GPTJConfig", {"base": "FlaxGPTJModel", "causal-lm": "FlaxGPTJForCausalLM"}),
    },
    exports={
        "configuration": ("GPTJConfig",),
        "modeling": ("FlaxGPTJModel", "FlaxGPTJForCausalLM", "FlaxGPTJPreTrainedModel"),
    },
    # nn.Dense kernels are [in, out]: column-parallel q/k/v and fc_in, row-parallel out_proj and fc_out.
    partition_rules=(
        (r"wte/embedding$", ("tensor", "fsdp")),
        (r"(q_proj|k_proj|v_proj|fc_in)/kernel$", ("fsdp", "tensor")),
        (r"fc_in/bias$", ("tensor",)),
        (r"(out_proj|fc_out)/kernel$", ("tensor", "fsdp")),
        (r"lm_head/kernel$", ("fsdp", "tensor")),
        (r"lm_head/bias$", ("tensor",)),
    ),
    gguf="gguf",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

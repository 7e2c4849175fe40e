"""GPT-2 (and GPT-SW3 checkpoints, which are GPT-2 models): the family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType, TokenizerHint

FAMILY = Family(
    name="gpt2",
    model_types={
        "gpt2": ModelType("GPT2Config", {"base": "FlaxGPT2Model", "causal-lm": "FlaxGPT2LMHeadModel"}),
        # GPT-SW3 is GPT-2 with its own (SentencePiece) tokenizer.
        "gpt-sw3": ModelType("GPT2Config", {"base": "FlaxGPT2Model", "causal-lm": "FlaxGPT2LMHeadModel"}),
    },
    exports={
        "configuration": ("GPT2Config",),
        "modeling": ("FlaxGPT2Model", "FlaxGPT2LMHeadModel", "FlaxGPT2PreTrainedModel"),
        "tokenization": ("gpt2_tokenizer", "gpt_sw3_tokenizer", "GPTSw3Tokenizer"),
    },
    # Embeddings [V, D] split over the vocabulary (tensor) and the width (fsdp); the Conv1D-layout
    # kernels are [out, in]: column-parallel in-projections, row-parallel out-projections.
    partition_rules=(
        (r"wte/embedding$", ("tensor", "fsdp")),
        (r"wpe/embedding$", (None, "fsdp")),
        (r"(c_attn|q_attn|c_fc)/kernel$", ("tensor", "fsdp")),
        (r"(c_attn|q_attn|c_fc)/bias$", ("tensor",)),
        (r"c_proj/kernel$", ("fsdp", "tensor")),
        (r"lm_head/kernel$", ("fsdp", "tensor")),
    ),
    gguf="gguf",
    tokenizer=(
        TokenizerHint(("vocab.json", "merges.txt"), "flaxformers.models.gpt2.tokenization:gpt2_tokenizer",
                      classes=("GPT2Tokenizer", "GPT2TokenizerFast")),
        # spiece.model is ALBERT's file name too: found by tokenizer_class or model_type only.
        TokenizerHint(("spiece.model",), "flaxformers.models.gpt2.tokenization:gpt_sw3_tokenizer",
                      classes=("GPTSw3Tokenizer",), model_types=("gpt-sw3",), by_files=False),
    ),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

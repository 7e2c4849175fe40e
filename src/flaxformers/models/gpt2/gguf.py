"""GPT-2 GGUF files (llama.cpp architecture `gpt2`)."""

from __future__ import annotations

from flaxformers.checkpoints.gguf import GGUFFile
from flaxformers.checkpoints.gguf_mapping import GGUFArchitecture, GGUFTokenizer, transpose

# GPT-2's byte-level BPE; llama.cpp names its pre-tokenizer "gpt-2" (older files: "default").
BYTE_LEVEL = GGUFTokenizer("byte-level", {"pre_tokenizers": {"default": None, "gpt-2": None, "gpt2": None}})


def _supplied(config: dict, f: GGUFFile) -> dict:
    return {"n_ctx": config.get("n_positions", 1024), "activation_function": "gelu_new"}


GGUF_ARCHITECTURES = {
    "gpt2": GGUFArchitecture(
        "gpt2",
        ("GPT2LMHeadModel",),
        {
            "token_embd": "transformer.wte",
            "position_embd": "transformer.wpe",
            "output_norm": "transformer.ln_f",
            "output": "lm_head",
            "blk.{i}.attn_norm": "transformer.h.{i}.ln_1",
            "blk.{i}.attn_qkv": "transformer.h.{i}.attn.c_attn",
            "blk.{i}.attn_output": "transformer.h.{i}.attn.c_proj",
            "blk.{i}.ffn_norm": "transformer.h.{i}.ln_2",
            "blk.{i}.ffn_up": "transformer.h.{i}.mlp.c_fc",
            "blk.{i}.ffn_down": "transformer.h.{i}.mlp.c_proj",
        },
        {
            "context_length": "n_positions",
            "embedding_length": "n_embd",
            "block_count": "n_layer",
            "feed_forward_length": "n_inner",
            "attention.head_count": "n_head",
            "attention.layer_norm_epsilon": "layer_norm_epsilon",
        },
        _supplied,
        ((r"\.(attn_qkv|attn_output|ffn_up|ffn_down)\.weight$", transpose),),
        tokenizers={"gpt2": BYTE_LEVEL},
    ),
}

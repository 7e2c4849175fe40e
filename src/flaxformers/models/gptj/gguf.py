"""GPT-J GGUF files (llama.cpp architecture `gptj`): HF names, no layout change (its rotary layout is
already llama.cpp's pairwise one), GPT-2's byte-level BPE tokenizer."""

from __future__ import annotations

from flaxformers.checkpoints.gguf import GGUFFile
from flaxformers.checkpoints.gguf_mapping import GGUFArchitecture
from flaxformers.models.gpt2.gguf import BYTE_LEVEL


def _supplied(config: dict, f: GGUFFile) -> dict:
    return {"activation_function": "gelu_new"}


GGUF_ARCHITECTURES = {
    "gptj": GGUFArchitecture(
        "gptj",
        ("GPTJForCausalLM",),
        {
            "token_embd": "transformer.wte",
            "output_norm": "transformer.ln_f",
            "output": "lm_head",
            "blk.{i}.attn_norm": "transformer.h.{i}.ln_1",
            "blk.{i}.attn_q": "transformer.h.{i}.attn.q_proj",
            "blk.{i}.attn_k": "transformer.h.{i}.attn.k_proj",
            "blk.{i}.attn_v": "transformer.h.{i}.attn.v_proj",
            "blk.{i}.attn_output": "transformer.h.{i}.attn.out_proj",
            "blk.{i}.ffn_up": "transformer.h.{i}.mlp.fc_in",
            "blk.{i}.ffn_down": "transformer.h.{i}.mlp.fc_out",
        },
        {
            "context_length": "n_positions",
            "embedding_length": "n_embd",
            "block_count": "n_layer",
            "feed_forward_length": "n_inner",
            "attention.head_count": "n_head",
            "attention.layer_norm_epsilon": "layer_norm_epsilon",
            "rope.dimension_count": "rotary_dim",
        },
        _supplied,
        tokenizers={"gpt2": BYTE_LEVEL},
    ),
}

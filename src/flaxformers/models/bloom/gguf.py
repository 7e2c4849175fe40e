"""BLOOM GGUF files (llama.cpp architecture `bloom`)."""

from __future__ import annotations

import numpy as np

from flaxformers.checkpoints.gguf_mapping import GGUFArchitecture, GGUFTokenizer


def _regroup_qkv(w: np.ndarray, config: dict) -> np.ndarray:
    """llama.cpp stores the fused QKV as [all q; all k; all v]; HF keeps [head][q, k, v]."""
    heads, hidden = config["n_head"], config["hidden_size"]
    parts = [p.reshape(heads, hidden // heads, *w.shape[1:]) for p in np.split(w, 3, axis=0)]
    return np.stack(parts, axis=1).reshape(w.shape)


GGUF_ARCHITECTURES = {
    "bloom": GGUFArchitecture(
        "bloom",
        ("BloomForCausalLM",),
        {
            "token_embd": "transformer.word_embeddings",
            "token_embd_norm": "transformer.word_embeddings_layernorm",
            "output_norm": "transformer.ln_f",
            "output": "lm_head",
            "blk.{i}.attn_norm": "transformer.h.{i}.input_layernorm",
            "blk.{i}.attn_qkv": "transformer.h.{i}.self_attention.query_key_value",
            "blk.{i}.attn_output": "transformer.h.{i}.self_attention.dense",
            "blk.{i}.ffn_norm": "transformer.h.{i}.post_attention_layernorm",
            "blk.{i}.ffn_up": "transformer.h.{i}.mlp.dense_h_to_4h",
            "blk.{i}.ffn_down": "transformer.h.{i}.mlp.dense_4h_to_h",
        },
        {
            "embedding_length": "hidden_size",
            "block_count": "n_layer",
            "attention.head_count": "n_head",
            "attention.layer_norm_epsilon": "layer_norm_epsilon",
        },
        transforms=((r"\.attn_qkv\.(weight|bias)$", _regroup_qkv),),
        tied_always=True,
        tokenizers={"gpt2": GGUFTokenizer("byte-level", {"pre_tokenizers": {"default": None, "gpt-2": None}})},
    ),
}

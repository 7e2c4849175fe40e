"""Gemma, Gemma 2 and Gemma 3 GGUF files (llama.cpp architectures `gemma`, `gemma2`, `gemma3`)."""

from __future__ import annotations

from flaxformers.checkpoints.gguf import GGUFFile
from flaxformers.checkpoints.gguf_mapping import (
    DECODER_CONFIG_KEYS,
    DECODER_TENSOR_NAMES,
    GGUFArchitecture,
    GGUFTokenizer,
    minus_one,
    rope_scaling,
)

_KEYS = {**DECODER_CONFIG_KEYS, "attention.key_length": "head_dim"}
_NAMES = DECODER_TENSOR_NAMES
# Gemma 1 has one norm before the MLP, which HF calls post_attention_layernorm.
_NAMES_1 = {**_NAMES, "blk.{i}.ffn_norm": "model.layers.{i}.post_attention_layernorm"}
# Gemma 2 and 3 norm both sides of attention and of the MLP.
_NAMES_2 = {
    **_NAMES,
    "blk.{i}.post_attention_norm": "model.layers.{i}.post_attention_layernorm",
    "blk.{i}.ffn_norm": "model.layers.{i}.pre_feedforward_layernorm",
    "blk.{i}.post_ffw_norm": "model.layers.{i}.post_feedforward_layernorm",
}
_NAMES_3 = {
    **_NAMES_2,
    "blk.{i}.attn_q_norm": "model.layers.{i}.self_attn.q_norm",
    "blk.{i}.attn_k_norm": "model.layers.{i}.self_attn.k_norm",
}
_NORMS = ((r"norm\.weight$", minus_one),)  # llama.cpp bakes Gemma's `1 + w` into every RMSNorm weight
# SentencePiece pieces as BPE with byte fallback ("llama" is llama.cpp's name for a SentencePiece vocabulary).
_TOKENIZERS = {"llama": GGUFTokenizer("sentencepiece")}


def _query_pre_attn_scalar(config: dict) -> float:
    # llama.cpp scales queries by 1/sqrt(hidden / heads) for the 27B models (62 and 46 blocks)
    # and by 1/sqrt(head_dim) otherwise; transformers' configs carry the same numbers.
    if config["num_hidden_layers"] in (46, 62):
        return config["hidden_size"] // config["num_attention_heads"]
    return config["head_dim"]


def _gemma_supplied(config: dict, f: GGUFFile) -> dict:
    return {"hidden_activation": "gelu_pytorch_tanh", "hidden_act": "gelu_pytorch_tanh"}


def _gemma2_supplied(config: dict, f: GGUFFile) -> dict:
    layers = config["num_hidden_layers"]
    return {
        "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": _query_pre_attn_scalar(config),
        "sliding_window": f.metadata.get("gemma2.attention.sliding_window", 4096),
        "attn_logit_softcapping": float(f.metadata.get("gemma2.attn_logit_softcapping", 50.0)),
        "final_logit_softcapping": float(f.metadata.get("gemma2.final_logit_softcapping", 30.0)),
        # even layers slide, odd layers see everything
        "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
    }


GEMMA3_SLIDING_WINDOW_PATTERN = 6  # every 6th layer is global; llama.cpp hard-codes it too
GEMMA3_LOCAL_ROPE_BASE = 10_000.0


def _gemma3_supplied(config: dict, f: GGUFFile) -> dict:
    layers, pattern = config["num_hidden_layers"], GEMMA3_SLIDING_WINDOW_PATTERN
    return {
        "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": _query_pre_attn_scalar(config),
        "sliding_window": f.metadata.get("gemma3.attention.sliding_window", 4096),
        "sliding_window_pattern": pattern,
        "layer_types": [
            "full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(layers)
        ],
        "rope_local_base_freq": GEMMA3_LOCAL_ROPE_BASE,
        "rope_scaling": rope_scaling("gemma3", f),
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
    }


GGUF_ARCHITECTURES = {
    "gemma": GGUFArchitecture("gemma", ("GemmaForCausalLM",), _NAMES_1, _KEYS, _gemma_supplied, _NORMS,
                              tokenizers=_TOKENIZERS),
    "gemma2": GGUFArchitecture("gemma2", ("Gemma2ForCausalLM",), _NAMES_2, _KEYS, _gemma2_supplied, _NORMS,
                               tokenizers=_TOKENIZERS),
    "gemma3": GGUFArchitecture("gemma3_text", ("Gemma3ForCausalLM",), _NAMES_3, _KEYS, _gemma3_supplied, _NORMS,
                               tokenizers=_TOKENIZERS),
}

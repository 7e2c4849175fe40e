"""Llama GGUF files (llama.cpp architecture `llama`), and the tables Mistral- and Qwen-style files share.

llama.cpp's converter permutes the rows of Llama's Q and K projections (its RoPE pairs dims (2i, 2i+1)
where HF pairs (i, i + H/2)); transformers' GGUF loader permutes them back, and so do we. A `llama`
file whose `general.name` is exactly "mistral" is a Mistral model, as transformers reads it.
"""

from __future__ import annotations

import numpy as np

from flaxformers.checkpoints.gguf import GGUFFile
from flaxformers.checkpoints.gguf_mapping import (
    DECODER_CONFIG_KEYS,
    DECODER_TENSOR_NAMES,
    GGUFArchitecture,
    GGUFTokenizer,
    rope_scaling,
)

# llama.cpp's `ffn_norm` is the norm before the MLP, HF's post_attention_layernorm.
TENSOR_NAMES = {**DECODER_TENSOR_NAMES, "blk.{i}.ffn_norm": "model.layers.{i}.post_attention_layernorm"}

# Byte-level BPE split patterns by `tokenizer.ggml.pre`, as transformers' GGUF loader applies them
# (None: GPT-2's own pre-tokenizer, which is what transformers uses for a name it has no pattern for).
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
BYTE_LEVEL_PRE = {
    "default": None, "gpt-2": None, "gpt2": None, "smollm": None,
    "llama3": LLAMA3_SPLIT, "llama-v3": LLAMA3_SPLIT, "llama-bpe": LLAMA3_SPLIT, "smaug-bpe": LLAMA3_SPLIT,
    "dbrx": LLAMA3_SPLIT, "falcon3": LLAMA3_SPLIT,
}
TOKENIZERS = {
    "gpt2": GGUFTokenizer("byte-level", {"pre_tokenizers": BYTE_LEVEL_PRE}),
    # A SentencePiece vocabulary as transformers' LlamaTokenizer: "▁" prefixed to the text, merges by score.
    "llama": GGUFTokenizer("sentencepiece", {"dummy_prefix": True}),
}


def unpermute_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's row permutation of a Q or K weight [heads * H, in] (or bias [heads * H])."""
    half = w.shape[0] // heads // 2
    return w.reshape(heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _unpermute_q(w: np.ndarray, config: dict) -> np.ndarray:
    return unpermute_rows(w, config["num_attention_heads"])


def _unpermute_k(w: np.ndarray, config: dict) -> np.ndarray:
    return unpermute_rows(w, config.get("num_key_value_heads", config["num_attention_heads"]))


def _supplied(config: dict, f: GGUFFile) -> dict:
    out = {"rope_scaling": rope_scaling(f.architecture, f)}
    if "llama.rope.dimension_count" in f.metadata:
        out["head_dim"] = f.number("llama.rope.dimension_count", integer=True)
    if f.metadata.get("general.name") == "mistral":
        out.update(model_type="mistral", architectures=["MistralForCausalLM"])
    return out


GGUF_ARCHITECTURES = {
    "llama": GGUFArchitecture(
        "llama", ("LlamaForCausalLM",), TENSOR_NAMES, DECODER_CONFIG_KEYS, _supplied,
        ((r"\.attn_q\.(weight|bias)$", _unpermute_q), (r"\.attn_k\.(weight|bias)$", _unpermute_k)),
        tokenizers=TOKENIZERS,
    ),
}

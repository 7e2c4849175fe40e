"""Qwen2 GGUF files (llama.cpp architecture `qwen2`): Llama's tensor names with q/k/v biases, no permutation,
and the Qwen2 byte-level pre-tokenizer."""

from __future__ import annotations

from flaxformers.checkpoints.gguf import GGUFFile
from flaxformers.checkpoints.gguf_mapping import (
    DECODER_CONFIG_KEYS,
    GGUFArchitecture,
    GGUFTokenizer,
    rope_scaling,
)
from flaxformers.models.llama.gguf import BYTE_LEVEL_PRE, TENSOR_NAMES

# transformers' Qwen2 split (tokenization_qwen2.PRETOKENIZE_REGEX): digits one at a time.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
TOKENIZERS = {"gpt2": GGUFTokenizer("byte-level", {"pre_tokenizers": {
    **BYTE_LEVEL_PRE, "qwen2": QWEN2_SPLIT, "deepseek-r1-qwen": QWEN2_SPLIT, "megrez": QWEN2_SPLIT,
}})}


def supplied(config: dict, f: GGUFFile) -> dict:
    return {"rope_scaling": rope_scaling(f.architecture, f)}


GGUF_ARCHITECTURES = {
    "qwen2": GGUFArchitecture("qwen2", ("Qwen2ForCausalLM",), TENSOR_NAMES, DECODER_CONFIG_KEYS, supplied,
                              tokenizers=TOKENIZERS),
}

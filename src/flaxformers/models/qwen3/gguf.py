"""Qwen3 GGUF files (llama.cpp architecture `qwen3`): Qwen2's tables plus the q/k norms; `head_dim` from
`attention.key_length`."""

from __future__ import annotations

from flaxformers.checkpoints.gguf_mapping import DECODER_CONFIG_KEYS, GGUFArchitecture
from flaxformers.models.llama.gguf import TENSOR_NAMES
from flaxformers.models.qwen2.gguf import TOKENIZERS, supplied

NAMES = {
    **TENSOR_NAMES,
    "blk.{i}.attn_q_norm": "model.layers.{i}.self_attn.q_norm",
    "blk.{i}.attn_k_norm": "model.layers.{i}.self_attn.k_norm",
}

GGUF_ARCHITECTURES = {
    "qwen3": GGUFArchitecture("qwen3", ("Qwen3ForCausalLM",), NAMES,
                              {**DECODER_CONFIG_KEYS, "attention.key_length": "head_dim"}, supplied,
                              tokenizers=TOKENIZERS),
}

"""BERT GGUF files (llama.cpp architecture `bert`), as base-model checkpoints."""

from __future__ import annotations

from flaxformers.checkpoints.gguf import GGUFFile
from flaxformers.checkpoints.gguf_mapping import GGUFArchitecture, GGUFTokenizer


def _supplied(config: dict, f: GGUFFile) -> dict:
    types = f.tensors.get("token_types.weight")
    return {"type_vocab_size": types.shape[0] if types else 2, "hidden_act": "gelu"}


# A base-model checkpoint (no `bert.` prefix): the loader adds the prefix a head model needs.
GGUF_ARCHITECTURES = {
    "bert": GGUFArchitecture(
        "bert",
        ("BertModel",),
        {
            "token_embd": "embeddings.word_embeddings",
            "token_types": "embeddings.token_type_embeddings",
            "position_embd": "embeddings.position_embeddings",
            "token_embd_norm": "embeddings.LayerNorm",
            "blk.{i}.attn_q": "encoder.layer.{i}.attention.self.query",
            "blk.{i}.attn_k": "encoder.layer.{i}.attention.self.key",
            "blk.{i}.attn_v": "encoder.layer.{i}.attention.self.value",
            "blk.{i}.attn_output": "encoder.layer.{i}.attention.output.dense",
            "blk.{i}.attn_output_norm": "encoder.layer.{i}.attention.output.LayerNorm",
            "blk.{i}.ffn_up": "encoder.layer.{i}.intermediate.dense",
            "blk.{i}.ffn_down": "encoder.layer.{i}.output.dense",
            "blk.{i}.layer_output_norm": "encoder.layer.{i}.output.LayerNorm",
        },
        {
            "context_length": "max_position_embeddings",
            "embedding_length": "hidden_size",
            "block_count": "num_hidden_layers",
            "feed_forward_length": "intermediate_size",
            "attention.head_count": "num_attention_heads",
            "attention.layer_norm_epsilon": "layer_norm_eps",
        },
        _supplied,
        tokenizers={"bert": GGUFTokenizer("wordpiece")},
    ),
}

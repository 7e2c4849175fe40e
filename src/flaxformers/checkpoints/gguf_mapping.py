"""GGUF -> Hugging Face: an HF config dict and HF PyTorch-named tensors, by tables families declare.

`load_gguf_checkpoint(path)` returns `(config_dict, state_dict)`: the config as a transformers
`config.json` would hold it, and fp32 numpy tensors under HF PyTorch names, which the shared
conversion rules then map onto Flax params (`from_pretrained(dir, gguf_file=...)` does this).

What differs per architecture is data, in each family's `FAMILY.gguf`: a `GGUFArchitecture` per
`general.architecture` with the HF model type, the GGUF -> HF tensor names, the metadata -> config
keys, what transformers supplies that the metadata lacks, the layout fixes llama.cpp's converter
applied (norms stored as `1 + w`, transposed Conv1D kernels, permuted or regrouped QKV), and how
to rebuild its tokenizer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flaxformers.checkpoints.gguf import GGUFError, GGUFFile, read_gguf
from flaxformers.progress import progress_bar

Transform = Callable[[np.ndarray, dict], np.ndarray]


@dataclass(frozen=True)
class GGUFTokenizer:
    """How to rebuild a tokenizer from `tokenizer.ggml.*`: a generic builder and its options.

    `builder` is one of `flaxformers.tokenizers.gguf.BUILDERS` ("sentencepiece", "byte-level",
    "wordpiece"); `options` are its keyword arguments (e.g. the byte-level pre-tokenizer patterns by
    `tokenizer.ggml.pre` name).
    """

    builder: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GGUFArchitecture:
    """How one `general.architecture` maps onto an HF model."""

    model_type: str
    architectures: tuple[str, ...]  # the HF class names config.json lists
    names: dict[str, str]  # GGUF module name -> HF module name; `{i}` is the block index
    config_keys: dict[str, str]  # `<arch>.<key>` metadata -> HF config key
    supplied: Callable[[dict, GGUFFile], dict] = lambda config, f: {}  # what the metadata lacks
    transforms: tuple[tuple[str, Transform], ...] = ()  # (regex on the GGUF tensor name, fix)
    tied_always: bool = False  # the HF model ties its head whatever the file holds
    tokenizers: Mapping[str, GGUFTokenizer] = field(default_factory=dict)  # by `tokenizer.ggml.model`


# `<arch>.<key>` -> HF config key of the RoPE decoders (llama.cpp's names, transformers' keys).
DECODER_CONFIG_KEYS = {
    "context_length": "max_position_embeddings",
    "embedding_length": "hidden_size",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.layer_norm_rms_epsilon": "rms_norm_eps",
    "rope.freq_base": "rope_theta",
}

# GGUF module -> HF module of the RoPE decoders (`{i}` is the block index); norms differ per family.
DECODER_TENSOR_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
    "blk.{i}.attn_q": "model.layers.{i}.self_attn.q_proj",
    "blk.{i}.attn_k": "model.layers.{i}.self_attn.k_proj",
    "blk.{i}.attn_v": "model.layers.{i}.self_attn.v_proj",
    "blk.{i}.attn_output": "model.layers.{i}.self_attn.o_proj",
    "blk.{i}.attn_norm": "model.layers.{i}.input_layernorm",
    "blk.{i}.ffn_gate": "model.layers.{i}.mlp.gate_proj",
    "blk.{i}.ffn_up": "model.layers.{i}.mlp.up_proj",
    "blk.{i}.ffn_down": "model.layers.{i}.mlp.down_proj",
}


# --- layout fixes more than one family needs ------------------------------------------------------
def minus_one(w: np.ndarray, config: dict) -> np.ndarray:
    return w - np.float32(1)  # llama.cpp stores `(1 + w)` RMSNorm weights with the 1 baked in


def transpose(w: np.ndarray, config: dict) -> np.ndarray:
    return np.ascontiguousarray(w.T)  # llama.cpp stores Conv1D [in, out] kernels as [out, in]


def rope_scaling(arch: str, f: GGUFFile) -> dict | None:
    """`rope_scaling` from `<arch>.rope.scaling.type` / `.factor` (and yarn's `.original_context_length`),
    None when the file has none."""
    kind = f.metadata.get(f"{arch}.rope.scaling.type")
    factor = f.metadata.get(f"{arch}.rope.scaling.factor")
    if kind in (None, "none") or factor is None:
        return None
    out = {"rope_type": kind, "factor": f.number(f"{arch}.rope.scaling.factor")}
    if f"{arch}.rope.scaling.original_context_length" in f.metadata:
        out["original_max_position_embeddings"] = f.number(f"{arch}.rope.scaling.original_context_length",
                                                           integer=True)
    return out


# --- the mapping -----------------------------------------------------------------------------------
# tokenizer.ggml.* id -> HF config key
_TOKEN_ID_KEYS = {
    "bos_token_id": "bos_token_id",
    "eos_token_id": "eos_token_id",
    "padding_token_id": "pad_token_id",
    "unknown_token_id": "unk_token_id",
}


def architecture_of(f: GGUFFile) -> GGUFArchitecture:
    from flaxformers.registry import gguf_architectures

    table = gguf_architectures()
    arch = f.architecture
    if arch not in table:
        raise GGUFError(f"{f.path} holds a {arch!r} model; flaxformers loads GGUF architectures {sorted(table)}.")
    return table[arch]


def gguf_config(f: GGUFFile) -> dict[str, Any]:
    """An HF `config.json`-style dict from the metadata, plus what transformers supplies."""
    spec, arch = architecture_of(f), f.architecture
    config: dict[str, Any] = {"model_type": spec.model_type, "architectures": list(spec.architectures)}
    for key, hf_key in spec.config_keys.items():
        if f"{arch}.{key}" in f.metadata:
            config[hf_key] = f.number(f"{arch}.{key}")
    embedding = f.tensors.get("token_embd.weight")
    if f"{arch}.block_count" not in f.metadata or embedding is None or len(embedding.shape) != 2:
        raise GGUFError(f"{f.path} lacks `{arch}.block_count` or a 2-D `token_embd.weight`; it is not a complete "
                        "model.")
    _block_count(f)
    # The embedding's rows are the model's vocabulary, padded or not.
    config["vocab_size"] = embedding.shape[0]
    for key, hf_key in _TOKEN_ID_KEYS.items():
        if f"tokenizer.ggml.{key}" in f.metadata:
            config[hf_key] = f.number(f"tokenizer.ggml.{key}", integer=True)
    config.update(spec.supplied(config, f))
    config["tie_word_embeddings"] = spec.tied_always or _head_is_embedding(f)
    if "general.name" in f.metadata:
        config["_name_or_path"] = f.metadata["general.name"]
    return config


def _block_count(f: GGUFFile) -> int:
    layers = f.number(f"{f.architecture}.block_count", integer=True)
    if not 0 < layers <= len(f.tensors):  # every block holds tensors; a hostile count would loop for ever
        raise GGUFError(f"{f.path}: `{f.architecture}.block_count` is {layers}, but the file has {len(f.tensors)} "
                        "tensors; the header is corrupt.")
    return layers


def _head_is_embedding(f: GGUFFile) -> bool:
    """llama.cpp writes `output.weight` only when it differs from the embedding (GPT-2 writes a copy)."""
    out, emb = f.tensors.get("output.weight"), f.tensors.get("token_embd.weight")
    if out is None:
        return True
    return out.shape == emb.shape and out.ggml_type == emb.ggml_type and np.array_equal(f.raw(out.name), f.raw(emb.name))


def _hf_name_table(spec: GGUFArchitecture, num_layers: int) -> dict[str, str]:
    table = {}
    for gguf_name, hf_name in spec.names.items():
        for i in range(num_layers) if "{i}" in gguf_name else [None]:
            table[gguf_name.format(i=i)] = hf_name.format(i=i)
    return table


@dataclass
class GGUFCheckpoint:
    """A GGUF file's model: HF config dict and the GGUF -> HF tensor names."""

    file: GGUFFile
    config: dict[str, Any]
    names: dict[str, str]  # GGUF tensor name -> HF PyTorch name
    unused: list[str] = field(default_factory=list)  # GGUF tensors the HF model has no place for


def open_gguf(path: str | os.PathLike) -> GGUFCheckpoint:
    """Parse a GGUF file's header and work out its config and tensor names; reads no tensor data."""
    f = read_gguf(path)
    spec = architecture_of(f)
    config = gguf_config(f)
    table = _hf_name_table(spec, _block_count(f))
    names, unused = {}, []
    for name in f.tensors:
        module, _, leaf = name.rpartition(".")
        if module in table and leaf in ("weight", "bias"):
            names[name] = f"{table[module]}.{leaf}"
        else:
            unused.append(name)
    if config["tie_word_embeddings"] and "output.weight" in names:
        del names["output.weight"]  # a copy of the embedding
    return GGUFCheckpoint(f, config, names, unused)


def gguf_state_dict(ckpt: GGUFCheckpoint, progress: bool | None = None) -> dict[str, np.ndarray]:
    """Every mapped tensor, dequantized to fp32, with llama.cpp's layout changes undone.

    `progress`: show a progress bar (None: as `flaxformers.progress.enable_progress_bars` set)."""
    spec = architecture_of(ckpt.file)
    transforms = [(re.compile(pattern), fix) for pattern, fix in spec.transforms]
    items = progress_bar(ckpt.names.items(), "Dequantizing GGUF tensors", len(ckpt.names), enabled=progress)
    out = {}
    for gguf_name, hf_name in items:
        array = ckpt.file.dequantize(gguf_name)
        for pattern, fix in transforms:
            if pattern.search(gguf_name):
                try:
                    array = fix(array, ckpt.config)
                except (ArithmeticError, LookupError, TypeError, ValueError) as e:  # metadata that lies
                    raise GGUFError(f"{ckpt.file.path}: tensor {gguf_name!r} {array.shape} does not fit the model "
                                    f"its metadata describes ({type(e).__name__}: {e}).") from None
        out[hf_name] = array
    return out


def load_gguf_checkpoint(
    path: str | os.PathLike, model_type: str | None = None, progress: bool | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`(config_dict, state_dict)` of a GGUF file: HF config.json keys and fp32 HF PyTorch tensors.

    `model_type` is what the caller's config class expects; a file of another architecture is an error.
    """
    ckpt = open_gguf(path)
    found = ckpt.config["model_type"]
    if model_type is not None and model_type != found:
        raise GGUFError(
            f"{ckpt.file.path} holds a {ckpt.file.architecture!r} model (model_type {found!r}), but the class "
            f"loading it expects model_type {model_type!r}. Load it with the {found} class or with "
            "FlaxAutoModelForCausalLM."
        )
    return ckpt.config, gguf_state_dict(ckpt, progress=progress)


__all__ = [
    "DECODER_CONFIG_KEYS",
    "DECODER_TENSOR_NAMES",
    "GGUFArchitecture",
    "GGUFCheckpoint",
    "GGUFTokenizer",
    "architecture_of",
    "gguf_config",
    "gguf_state_dict",
    "load_gguf_checkpoint",
    "minus_one",
    "open_gguf",
    "rope_scaling",
    "transpose",
]

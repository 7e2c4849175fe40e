"""GGUF: llama.cpp's single-file checkpoints, read into HF PyTorch names and an HF config dict.

`load_gguf_checkpoint(path)` returns `(config_dict, state_dict)`: the config as a transformers
`config.json` would hold it, and fp32 numpy tensors under HF PyTorch names, which the shared
conversion tables then map onto Flax params (`from_pretrained(dir, gguf_file=...)` does this).

The header is parsed here rather than with `gguf.GGUFReader`, which builds Python objects for every
vocabulary entry (14-20 s for a 262k vocabulary). String arrays are skipped until asked for, and
tensor data stays memory-mapped until a tensor is dequantized. Dequantizing uses `gguf.quants`,
so every type that package knows loads.

What differs per architecture is data: `GGUF_ARCHITECTURES` holds, for each, the HF model type, the
GGUF -> HF tensor names, the metadata -> config keys, what transformers supplies that the metadata
lacks, and the layout fixes llama.cpp's converter applied (norms stored as `1 + w`, transposed
Conv1D kernels, regrouped fused QKV).
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flaxformers.progress import progress_bar

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# Metadata value types (GGUF spec): fixed-size scalars, 8 = string, 9 = array.
_SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

# ggml tensor types stored as plain values (type id -> numpy dtype); everything else is blocks.
_PLAIN_TYPES = {0: np.float32, 1: np.float16, 24: np.int8, 25: np.int16, 26: np.int32, 27: np.int64, 28: np.float64}
_BF16 = 30
_MAX_DIMS = 4  # GGML_MAX_DIMS, as llama.cpp checks it
_MAX_ARRAY_NESTING = 8  # arrays of arrays: a bound on recursion, far above what any writer uses
_MIN_TENSOR_INFO = 8 + 4 + 4 + 8  # name length, dimension count, type, offset


class GGUFError(ValueError):
    """A GGUF file is malformed, or holds something this loader does not handle."""


# --- reading the file ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StringArray:
    """A string array left unread in the file (a 262k-entry vocabulary costs seconds to build)."""

    offset: int  # of the first element's length field
    count: int

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # numpy / PyTorch order: GGUF lists dimensions fastest-moving first
    ggml_type: int
    offset: int  # absolute, in the file
    nbytes: int

    @property
    def type_name(self) -> str:
        from gguf import GGMLQuantizationType

        try:
            return GGMLQuantizationType(self.ggml_type).name
        except ValueError:
            return f"type {self.ggml_type}"


def _block(ggml_type: int) -> tuple[int, int]:
    """(elements, bytes) of one storage block of a ggml type."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        return GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise GGUFError(
            f"ggml tensor type {ggml_type} is unknown to the installed `gguf` package; upgrade it "
            "(`pip install -U gguf`) or re-quantize the file to a common type (Q4_K, Q8_0, F16...)."
        ) from None


class GGUFFile:
    """A parsed GGUF header over a memory map of the file.

    `metadata` maps keys to Python values (numeric arrays as numpy arrays, string arrays as
    `StringArray` until read with `strings(key)`); `tensors` maps names to `TensorInfo`.
    Every length and count in the header is checked against the bytes that remain before anything
    is allocated or looped over, so a truncated or hostile file raises one `GGUFError` that names
    the file and the field.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"No GGUF file at {self.path!r}.")
        with open(self.path, "rb") as f:
            try:
                self._buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file cannot be mapped
                raise GGUFError(f"{self.path} is empty, not a GGUF file.") from None
        self._pos = 0
        self._parse()

    # --- header ----------------------------------------------------------------------------------
    def _error(self, field: str, problem: str) -> GGUFError:
        return GGUFError(f"{self.path} is truncated or corrupt: {field} at byte {self._pos} {problem}. "
                         "Re-download or re-convert the file.")

    def _need(self, nbytes: int, field: str) -> None:
        remaining = len(self._buf) - self._pos
        if nbytes > remaining:
            raise self._error(field, f"needs {nbytes} bytes, but only {remaining} remain")

    def _unpack(self, fmt: str, field: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        self._need(size, field)
        values = struct.unpack_from("<" + fmt, self._buf, self._pos)
        self._pos += size
        return values

    def _string(self, field: str) -> str:
        (length,) = self._unpack("Q", f"the length of {field}")
        self._need(length, field)
        raw = self._buf[self._pos : self._pos + length]
        self._pos += length
        return raw.decode("utf-8", errors="replace")

    def _count(self, field: str, item_bytes: int) -> int:
        """A count of items of at least `item_bytes` each, which the remaining bytes must be able to hold."""
        (count,) = self._unpack("Q", f"the count of {field}")
        if count * item_bytes > len(self._buf) - self._pos:
            raise self._error(field, f"claims {count} items, more than the {len(self._buf) - self._pos} bytes left hold")
        return count

    def _value(self, value_type: int, field: str, depth: int = 0) -> Any:
        if value_type in _SCALAR_FORMATS:
            return self._unpack(_SCALAR_FORMATS[value_type], field)[0]
        if value_type == _STRING:
            return self._string(field)
        if value_type != _ARRAY:
            raise self._error(field, f"has the unknown value type {value_type}")
        if depth >= _MAX_ARRAY_NESTING:
            raise self._error(field, f"nests arrays more than {_MAX_ARRAY_NESTING} deep")
        (element_type,) = self._unpack("I", f"the element type of {field}")
        if element_type in _SCALAR_FORMATS:  # numeric: one numpy view, no per-element objects
            dtype = np.dtype("<" + _SCALAR_FORMATS[element_type])
            count = self._count(field, dtype.itemsize)
            values = np.frombuffer(self._buf, dtype=dtype, count=count, offset=self._pos).copy()
            self._pos += count * dtype.itemsize
            return values
        if element_type == _STRING:
            count = self._count(field, 8)
            array = StringArray(self._pos, count)
            for i in range(count):  # walk the lengths only
                (length,) = self._unpack("Q", f"the length of {field}[{i}]")
                self._need(length, f"{field}[{i}]")
                self._pos += length
            return array
        if element_type != _ARRAY:
            raise self._error(field, f"has the unknown element type {element_type}")
        count = self._count(field, 12)  # an inner array is at least its element type and count
        return [self._value(_ARRAY, f"{field}[{i}]", depth + 1) for i in range(count)]  # rare and small

    def _parse(self) -> None:
        magic = self._buf[:4]
        if magic != GGUF_MAGIC:
            raise GGUFError(f"{self.path} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r}).")
        self._pos = 4
        (self.version,) = self._unpack("I", "the version")
        if self.version not in SUPPORTED_VERSIONS:
            raise GGUFError(
                f"{self.path} is GGUF version {self.version}; supported versions are {SUPPORTED_VERSIONS}. "
                "Re-convert it with a current llama.cpp."
            )
        (tensor_count,) = self._unpack("Q", "the tensor count")
        kv_count = self._count("the metadata", 8 + 4 + 1)  # key length, value type, a 1-byte value
        if tensor_count * _MIN_TENSOR_INFO > len(self._buf) - self._pos:
            raise self._error("the tensor count", f"claims {tensor_count} tensors, more than the file can describe")
        self.metadata: dict[str, Any] = {}
        for i in range(kv_count):
            key = self._string(f"metadata key {i}")
            (value_type,) = self._unpack("I", f"the value type of {key!r}")
            self.metadata[key] = self._value(value_type, repr(key))
        infos = []
        for i in range(tensor_count):
            name = self._string(f"the name of tensor {i}")
            (n_dims,) = self._unpack("I", f"the dimension count of tensor {name!r}")
            if n_dims > _MAX_DIMS:
                raise self._error(f"tensor {name!r}", f"has {n_dims} dimensions; ggml tensors have at most {_MAX_DIMS}")
            dims = self._unpack(f"{n_dims}Q", f"the dimensions of tensor {name!r}")
            ggml_type, offset = self._unpack("IQ", f"the type and offset of tensor {name!r}")
            infos.append((name, tuple(reversed(dims)), ggml_type, offset))
        alignment = self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
            raise GGUFError(f"{self.path}: general.alignment is {alignment!r}; it must be a power of two.")
        self.data_offset = -(-self._pos // alignment) * alignment
        self.tensors: dict[str, TensorInfo] = {}
        for name, shape, ggml_type, offset in infos:
            try:
                nbytes = _nbytes(name, shape, ggml_type)
            except GGUFError as e:
                raise GGUFError(f"{self.path}: {e}") from None
            info = TensorInfo(name, shape, ggml_type, self.data_offset + offset, nbytes)
            if info.offset + info.nbytes > len(self._buf):
                raise GGUFError(
                    f"{self.path} is truncated: tensor {name!r} ends at byte {info.offset + info.nbytes}, "
                    f"past the file's {len(self._buf)} bytes. Re-download or re-assemble the file."
                )
            self.tensors[name] = info

    # --- access ----------------------------------------------------------------------------------
    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture")
        if not isinstance(arch, str):
            raise GGUFError(f"{self.path} has no `general.architecture` in its metadata.")
        return arch

    def strings(self, key: str) -> list[str]:
        """A string array from the metadata, read now (e.g. `tokenizer.ggml.tokens`)."""
        value = self.metadata[key]
        if not isinstance(value, StringArray):
            return list(value) if isinstance(value, list) else [value]
        buf, pos, out = self._buf, value.offset, []
        unpack = struct.Struct("<Q").unpack_from
        for _ in range(value.count):  # bounds checked when the header was parsed
            (length,) = unpack(buf, pos)
            out.append(buf[pos + 8 : pos + 8 + length].decode("utf-8", errors="replace"))
            pos += 8 + length
        return out

    def number(self, key: str, integer: bool = False) -> int | float:
        """A numeric metadata value; a per-layer array (some files) gives its largest entry."""
        value = self.metadata[key]
        if isinstance(value, np.ndarray) and value.size and value.dtype != np.bool_:
            value = value.max().item()
        if type(value) is int or (type(value) is float and not integer):
            return value
        kind = "an integer" if integer else "a number"
        raise GGUFError(f"{self.path}: metadata {key!r} is {type(value).__name__} {value!r:.60}, not {kind}.")

    def raw(self, name: str) -> np.ndarray:
        """The stored bytes of a tensor, as a read-only view of the memory map."""
        info = self.tensors[name]
        return np.frombuffer(self._buf, dtype=np.uint8, count=info.nbytes, offset=info.offset)

    def dequantize(self, name: str) -> np.ndarray:
        """A tensor as fp32 (integer types keep their type), in numpy / PyTorch shape order."""
        info = self.tensors.get(name)
        if info is None:
            raise KeyError(f"{self.path} has no tensor {name!r}.")
        try:
            return dequantize(self.raw(name), info.ggml_type, info.shape)
        except (ValueError, IndexError) as e:  # gguf.quants on blocks that no quantizer wrote
            if isinstance(e, GGUFError):
                raise
            raise GGUFError(f"{self.path}: tensor {name!r} ({info.type_name}) cannot be dequantized: {e}") from None


def _nbytes(name: str, shape: tuple[int, ...], ggml_type: int) -> int:
    elements = math.prod(shape)  # Python ints: a hostile shape cannot overflow
    if ggml_type in _PLAIN_TYPES:
        return elements * np.dtype(_PLAIN_TYPES[ggml_type]).itemsize
    if ggml_type == _BF16:
        return elements * 2
    block_elements, block_bytes = _block(ggml_type)
    if shape and shape[-1] % block_elements:
        raise GGUFError(f"tensor {name!r}: its last dimension {shape[-1]} is not a multiple of the "
                        f"{block_elements}-element blocks of ggml type {ggml_type}.")
    return elements // block_elements * block_bytes


def dequantize(raw: np.ndarray, ggml_type: int, shape: tuple[int, ...]) -> np.ndarray:
    """Stored bytes -> array of `shape`: fp32 for float and quantized types."""
    if ggml_type in _PLAIN_TYPES:
        array = raw.view(_PLAIN_TYPES[ggml_type]).reshape(shape)
        return array.astype(np.float32) if ggml_type in (1, 28) else array  # F16, F64
    if ggml_type == _BF16:  # numpy has no bfloat16: widen the bits to the top half of fp32
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if math.prod(shape) == 0:
        return np.zeros(shape, np.float32)
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    block_elements, block_bytes = _block(ggml_type)
    rows = raw.reshape(-1, shape[-1] // block_elements * block_bytes) if shape else raw
    return np.asarray(gguf_dequantize(rows, GGMLQuantizationType(ggml_type)), dtype=np.float32).reshape(shape)


# --- architectures: names, config, layout fixes ---------------------------------------------------
Transform = Callable[[np.ndarray, dict], np.ndarray]


def _minus_one(w: np.ndarray, config: dict) -> np.ndarray:
    return w - np.float32(1)  # llama.cpp stores Gemma's RMSNorm weight as 1 + w


def _transpose(w: np.ndarray, config: dict) -> np.ndarray:
    return np.ascontiguousarray(w.T)  # llama.cpp stores GPT-2's Conv1D [in, out] kernels as [out, in]


def _bloom_qkv(w: np.ndarray, config: dict) -> np.ndarray:
    """llama.cpp stores BLOOM's fused QKV as [all q; all k; all v]; HF keeps [head][q, k, v]."""
    heads, hidden = config["n_head"], config["hidden_size"]
    parts = [p.reshape(heads, hidden // heads, *w.shape[1:]) for p in np.split(w, 3, axis=0)]
    return np.stack(parts, axis=1).reshape(w.shape)


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


_GEMMA_KEYS = {
    "context_length": "max_position_embeddings",
    "embedding_length": "hidden_size",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.key_length": "head_dim",
    "attention.layer_norm_rms_epsilon": "rms_norm_eps",
    "rope.freq_base": "rope_theta",
}
_GEMMA_NAMES = {
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
# Gemma 1 has one norm before the MLP, which HF calls post_attention_layernorm.
_GEMMA1_NAMES = {**_GEMMA_NAMES, "blk.{i}.ffn_norm": "model.layers.{i}.post_attention_layernorm"}
# Gemma 2 and 3 norm both sides of attention and of the MLP.
_GEMMA2_NAMES = {
    **_GEMMA_NAMES,
    "blk.{i}.post_attention_norm": "model.layers.{i}.post_attention_layernorm",
    "blk.{i}.ffn_norm": "model.layers.{i}.pre_feedforward_layernorm",
    "blk.{i}.post_ffw_norm": "model.layers.{i}.post_feedforward_layernorm",
}
_GEMMA3_NAMES = {
    **_GEMMA2_NAMES,
    "blk.{i}.attn_q_norm": "model.layers.{i}.self_attn.q_norm",
    "blk.{i}.attn_k_norm": "model.layers.{i}.self_attn.k_norm",
}
_GEMMA_NORMS = ((r"norm\.weight$", _minus_one),)


def _query_pre_attn_scalar(config: dict) -> float:
    # llama.cpp scales queries by 1/sqrt(hidden / heads) for the 27B models (62 and 46 blocks)
    # and by 1/sqrt(head_dim) otherwise; transformers' configs carry the same numbers.
    if config["num_hidden_layers"] in (46, 62):
        return config["hidden_size"] // config["num_attention_heads"]
    return config["head_dim"]


def _rope_scaling(arch: str, f: GGUFFile) -> dict | None:
    kind = f.metadata.get(f"{arch}.rope.scaling.type")
    factor = f.metadata.get(f"{arch}.rope.scaling.factor")
    if kind in (None, "none") or factor is None:
        return None
    return {"rope_type": kind, "factor": float(factor)}


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
        "rope_scaling": _rope_scaling("gemma3", f),
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
    }


def _gpt2_supplied(config: dict, f: GGUFFile) -> dict:
    return {"n_ctx": config.get("n_positions", 1024), "activation_function": "gelu_new"}


def _bert_supplied(config: dict, f: GGUFFile) -> dict:
    types = f.tensors.get("token_types.weight")
    return {"type_vocab_size": types.shape[0] if types else 2, "hidden_act": "gelu"}


GGUF_ARCHITECTURES: dict[str, GGUFArchitecture] = {
    "gemma": GGUFArchitecture(
        "gemma", ("GemmaForCausalLM",), _GEMMA1_NAMES, _GEMMA_KEYS, _gemma_supplied, _GEMMA_NORMS
    ),
    "gemma2": GGUFArchitecture(
        "gemma2", ("Gemma2ForCausalLM",), _GEMMA2_NAMES, _GEMMA_KEYS, _gemma2_supplied, _GEMMA_NORMS
    ),
    "gemma3": GGUFArchitecture(
        "gemma3_text", ("Gemma3ForCausalLM",), _GEMMA3_NAMES, _GEMMA_KEYS, _gemma3_supplied, _GEMMA_NORMS
    ),
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
        _gpt2_supplied,
        ((r"\.(attn_qkv|attn_output|ffn_up|ffn_down)\.weight$", _transpose),),
    ),
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
        transforms=((r"\.attn_qkv\.(weight|bias)$", _bloom_qkv),),
        tied_always=True,
    ),
    # A base-model checkpoint (no `bert.` prefix): the loader adds the prefix a head model needs.
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
        _bert_supplied,
    ),
}

# tokenizer.ggml.* id -> HF config key
_TOKEN_ID_KEYS = {
    "bos_token_id": "bos_token_id",
    "eos_token_id": "eos_token_id",
    "padding_token_id": "pad_token_id",
    "unknown_token_id": "unk_token_id",
}


def architecture_of(f: GGUFFile) -> GGUFArchitecture:
    arch = f.architecture
    if arch not in GGUF_ARCHITECTURES:
        raise GGUFError(
            f"{f.path} holds a {arch!r} model; flaxformers loads GGUF architectures "
            f"{sorted(GGUF_ARCHITECTURES)}."
        )
    return GGUF_ARCHITECTURES[arch]


def gguf_config(f: GGUFFile) -> dict[str, Any]:
    """An HF `config.json`-style dict from the metadata, plus what transformers supplies."""
    spec, arch = architecture_of(f), f.architecture
    config: dict[str, Any] = {"model_type": spec.model_type, "architectures": list(spec.architectures)}
    for key, hf_key in spec.config_keys.items():
        if f"{arch}.{key}" in f.metadata:
            config[hf_key] = f.number(f"{arch}.{key}")
    missing = sorted({"num_hidden_layers", "n_layer"} & set(spec.config_keys.values()) - set(config))
    embedding = f.tensors.get("token_embd.weight")
    if missing or embedding is None or len(embedding.shape) != 2:
        raise GGUFError(f"{f.path} lacks `{arch}.block_count` or a 2-D `token_embd.weight`; it is not a complete "
                        "model.")
    layers = config.get("num_hidden_layers", config.get("n_layer"))
    if type(layers) is not int or not 0 < layers <= len(f.tensors):  # each block holds tensors
        raise GGUFError(f"{f.path}: `{arch}.block_count` is {layers!r}, but the file has {len(f.tensors)} tensors.")
    # The embedding's rows are the model's vocabulary, padded or not.
    config["vocab_size"] = f.tensors["token_embd.weight"].shape[0]
    for key, hf_key in _TOKEN_ID_KEYS.items():
        if f"tokenizer.ggml.{key}" in f.metadata:
            config[hf_key] = f.number(f"tokenizer.ggml.{key}", integer=True)
    config.update(spec.supplied(config, f))
    config["tie_word_embeddings"] = spec.tied_always or _head_is_embedding(f)
    if "general.name" in f.metadata:
        config["_name_or_path"] = f.metadata["general.name"]
    return config


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


_OPEN: dict[tuple, GGUFFile] = {}


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """A parsed GGUF header, reused while the file is unchanged (a loader and its tokenizer both ask)."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No GGUF file at {path!r}.")
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _OPEN:
        _OPEN.clear()  # keep one: each holds a memory map
        _OPEN[key] = GGUFFile(path)
    return _OPEN[key]


def open_gguf(path: str | os.PathLike) -> GGUFCheckpoint:
    """Parse a GGUF file's header and work out its config and tensor names; reads no tensor data."""
    f = read_gguf(path)
    spec = architecture_of(f)
    config = gguf_config(f)
    layers = config.get("num_hidden_layers", config.get("n_layer"))
    table = _hf_name_table(spec, layers)
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
    "GGUFArchitecture",
    "GGUFCheckpoint",
    "GGUFError",
    "GGUFFile",
    "GGUF_ARCHITECTURES",
    "TensorInfo",
    "dequantize",
    "gguf_config",
    "gguf_state_dict",
    "load_gguf_checkpoint",
    "open_gguf",
    "read_gguf",
]

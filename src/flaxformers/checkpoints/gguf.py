"""GGUF: llama.cpp's single-file checkpoints, read and dequantized.

This module is a reader only: `read_gguf(path)` parses the header over a memory map of the file and
`GGUFFile.dequantize(name)` gives a tensor as fp32 numpy. Turning an architecture's tensors and
metadata into an HF config and state dict is `checkpoints.gguf_mapping`, by the tables each family
declares.

The header is parsed here rather than with `gguf.GGUFReader`, which builds Python objects for every
vocabulary entry (14-20 s for a 262k vocabulary). String arrays are skipped until asked for, and
tensor data stays memory-mapped until a tensor is dequantized. Dequantizing uses `gguf.quants`,
so every type that package knows loads.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

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


__all__ = ["GGUFError", "GGUFFile", "StringArray", "TensorInfo", "dequantize", "read_gguf"]

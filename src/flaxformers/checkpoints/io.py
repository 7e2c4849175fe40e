"""Checkpoint files: read and write flat `{name: array}` dicts in every format people have.

Every reader returns numpy arrays keyed by the names stored in the file; no reader needs torch
except the `.bin` one, which unpickles only with `weights_only=True`. Writers are atomic: they
write a temporary file beside the target and rename it into place.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
FLAX_WEIGHTS_NAME = "flax_model.msgpack"
FLAX_WEIGHTS_INDEX_NAME = "flax_model.msgpack.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"
PT_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not fit the model."""


# --- atomic writes -------------------------------------------------------------------------------
@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path in the target's directory; rename it onto `path` on success."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# --- sizes and sharding --------------------------------------------------------------------------
_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(size: int | str) -> int:
    """`"10GB"` -> 10_000_000_000; ints pass through."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", str(size), flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"max_shard_size={size!r} is not a size; use an int of bytes or a string like '5GB'.")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def shard_names(tensors: dict[str, np.ndarray], max_bytes: int) -> list[list[str]]:
    """Split names into consecutive groups of at most `max_bytes` (a bigger tensor gets its own)."""
    shards: list[list[str]] = [[]]
    used = 0
    for name, array in tensors.items():
        size = array.nbytes
        if shards[-1] and used + size > max_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += size
    return shards


def _shard_filename(weights_name: str, index: int, total: int) -> str:
    stem, ext = weights_name.rsplit(".", 1)
    return f"{stem}-{index:05d}-of-{total:05d}.{ext}"


def save_sharded(
    tensors: dict[str, np.ndarray],
    directory: str | os.PathLike,
    weights_name: str,
    index_name: str,
    max_shard_size: int | str,
    write_one: Callable[[dict[str, np.ndarray], str], None],
    metadata: dict[str, Any] | None = None,
) -> list[str]:
    """Write one file, or shards plus an index, removing stale shards of an earlier save."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    groups = shard_names(tensors, parse_size(max_shard_size))
    stem = weights_name.rsplit(".", 1)[0]
    stale = re.compile(re.escape(stem) + r"-\d{5}-of-\d{5}\." + re.escape(weights_name.rsplit(".", 1)[1]))
    written: list[str] = []
    if len(groups) == 1:
        write_one(tensors, os.path.join(directory, weights_name))
        written.append(weights_name)
        for old in (index_name,):
            if os.path.exists(os.path.join(directory, old)):
                os.remove(os.path.join(directory, old))
    else:
        weight_map = {}
        for i, names in enumerate(groups, start=1):
            filename = _shard_filename(weights_name, i, len(groups))
            write_one({n: tensors[n] for n in names}, os.path.join(directory, filename))
            weight_map.update(dict.fromkeys(names, filename))
            written.append(filename)
        total = sum(a.nbytes for a in tensors.values())
        index = {"metadata": {"total_size": total, **(metadata or {})}, "weight_map": weight_map}
        atomic_write_text(os.path.join(directory, index_name), json.dumps(index, indent=2) + "\n")
        if os.path.exists(os.path.join(directory, weights_name)):
            os.remove(os.path.join(directory, weights_name))
    for entry in os.listdir(directory):
        if stale.fullmatch(entry) and entry not in written:
            os.remove(os.path.join(directory, entry))
    return written


def read_index(index_path: str | os.PathLike) -> dict[str, str]:
    """Return `{tensor name: shard path}` of a `*.index.json`, checking every shard exists."""
    index_path = os.fspath(index_path)
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{index_path} is not a valid shard index ({e!r}).") from e
    directory = os.path.dirname(index_path)
    out = {name: os.path.join(directory, shard) for name, shard in weight_map.items()}
    missing = sorted({p for p in out.values() if not os.path.exists(p)})
    if missing:
        raise CheckpointError(
            f"The shard index {index_path} names files that are not there: "
            f"{[os.path.basename(p) for p in missing]}. Download or copy the missing shards next to the index."
        )
    return out


# --- safetensors ---------------------------------------------------------------------------------
def _safetensors_header(path: str) -> dict[str, Any]:
    """The JSON header of a safetensors file, with clear errors for truncated or corrupt files."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is truncated ({size} bytes): it is not a safetensors file.")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise CheckpointError(f"{path} has a corrupt safetensors header (length {n} > file size {size}).")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{path} has a corrupt safetensors header: {e}.") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a corrupt safetensors header: not a JSON object.")
    header["__header_length__"] = n
    return header


_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_,
}


def read_safetensors(path: str | os.PathLike, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """Read tensors (all, or those in `names`) as numpy arrays over a memory map of the file.

    safetensors' own numpy loader has no bfloat16; ml_dtypes supplies it (and float8) here.
    """
    import ml_dtypes

    path = os.fspath(path)
    header = _safetensors_header(path)
    start = 8 + header.pop("__header_length__")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or (names is not None and name not in names):
            continue
        try:
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            dtype = np.dtype(getattr(ml_dtypes, dtype) if isinstance(dtype, str) else dtype)
            begin, end = (start + o for o in info["data_offsets"])
            shape = tuple(info["shape"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: corrupt safetensors entry for {name!r} ({e!r}).") from e
        if end > data.size or end - begin != dtype.itemsize * int(np.prod(shape)):
            raise CheckpointError(f"{path}: tensor {name!r} lies outside the file; the file is truncated or corrupt.")
        out[name] = data[begin:end].view(dtype).reshape(shape)
    return out


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    return _safetensors_header(os.fspath(path)).get("__metadata__") or {}


def write_safetensors(tensors: dict[str, np.ndarray], path: str, metadata: dict[str, str] | None = None) -> None:
    from safetensors.numpy import save

    # np.require keeps 0-d tensors 0-d (ascontiguousarray makes them [1]): CLIP's logit_scale, BatchNorm's counter
    data = save({k: np.require(v, requirements="C") for k, v in tensors.items()}, metadata={"format": "pt", **(metadata or {})})
    atomic_write_bytes(path, data)


# --- flax msgpack --------------------------------------------------------------------------------
def read_msgpack(path: str | os.PathLike) -> dict[str, Any]:
    """Return the nested param dict of a `flax_model.msgpack`."""
    from flax.serialization import msgpack_restore

    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        state = msgpack_restore(data)
    except Exception as e:  # msgpack raises several unrelated types on corrupt input
        raise CheckpointError(f"{path} is not a valid Flax msgpack checkpoint ({type(e).__name__}: {e}).") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a parameter dict.")
    return state


def write_msgpack(tree: dict[str, Any], path: str) -> None:
    from flax.serialization import msgpack_serialize

    atomic_write_bytes(path, msgpack_serialize(tree))


# --- torch .bin ----------------------------------------------------------------------------------
def read_torch_bin(path: str | os.PathLike, *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """Read a `pytorch_model.bin`. Only tensors are unpickled unless `allow_pickle=True` is asked for."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"Reading {os.fspath(path)} (a PyTorch pickle) needs torch: pip install torch. "
            "Or convert it once to safetensors, which needs no torch."
        ) from e
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=not allow_pickle)
    except Exception as e:
        raise CheckpointError(
            f"{os.fspath(path)} could not be loaded with weights_only=True ({e}). If you trust the file, "
            "pass allow_pickle=True to unpickle arbitrary objects."
        ) from e
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    out = {}
    for name, tensor in state.items():
        if not hasattr(tensor, "detach"):
            continue
        tensor = tensor.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            import ml_dtypes

            out[name] = tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        else:
            out[name] = tensor.numpy()
    return out


def write_torch_bin(tensors: dict[str, np.ndarray], path: str) -> None:
    import torch

    def to_torch(array: np.ndarray) -> torch.Tensor:
        array = np.array(array, copy=True, order="C")  # writable: torch rejects read-only memory maps
        if array.dtype.name == "bfloat16":  # torch.from_numpy knows no ml_dtypes
            return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(array)

    with atomic_path(path) as tmp:
        torch.save({k: to_torch(v) for k, v in tensors.items()}, tmp)


# --- one entry point ------------------------------------------------------------------------------
def read_weights_file(path: str, *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """Read any single PyTorch-layout weights file by its extension."""
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    if path.endswith((".bin", ".pt", ".pth")):
        return read_torch_bin(path, allow_pickle=allow_pickle)
    raise CheckpointError(f"Don't know how to read {path}: expected .safetensors or .bin.")


def read_state_dict(path: str | os.PathLike, *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """Read a PyTorch-layout state dict from a file, an `*.index.json`, or a directory holding one."""
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, PT_WEIGHTS_NAME, PT_WEIGHTS_INDEX_NAME):
            if os.path.exists(os.path.join(path, name)):
                return read_state_dict(os.path.join(path, name), allow_pickle=allow_pickle)
        raise CheckpointError(f"No PyTorch-layout weights ({SAFE_WEIGHTS_NAME}, {PT_WEIGHTS_NAME}) in {path}.")
    if path.endswith(".index.json"):
        out: dict[str, np.ndarray] = {}
        for shard in sorted(set(read_index(path).values())):
            out.update(read_weights_file(shard, allow_pickle=allow_pickle))
        return out
    if not os.path.exists(path):
        raise CheckpointError(f"{path} does not exist.")
    return read_weights_file(path, allow_pickle=allow_pickle)


def write_state_dict(
    tensors: dict[str, np.ndarray],
    directory: str | os.PathLike,
    *,
    max_shard_size: int | str = "10GB",
    safe_serialization: bool = True,
) -> list[str]:
    """Write a PyTorch-layout state dict as safetensors (default) or torch .bin, sharded past the limit."""
    if safe_serialization:
        return save_sharded(tensors, directory, SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, max_shard_size,
                            write_safetensors)
    return save_sharded(tensors, directory, PT_WEIGHTS_NAME, PT_WEIGHTS_INDEX_NAME, max_shard_size, write_torch_bin)

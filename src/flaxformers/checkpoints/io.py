"""Checkpoint files: read and write flat `{name: array}` dicts in every format people have.

Every reader returns numpy arrays keyed by the names stored in the file; no reader needs torch
except the `.bin` one, which unpickles only with `weights_only=True`. A shard index may only name
files inside its checkpoint directory. Every file is written under a temporary name beside the
target and renamed into place, with the user's umask; `save_weights` makes a whole checkpoint
(one file, or shards and their index) replace the previous one in a single atomic step.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
FLAX_WEIGHTS_NAME = "flax_model.msgpack"
FLAX_WEIGHTS_INDEX_NAME = "flax_model.msgpack.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"
PT_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
# In the order a loader prefers them: PyTorch-layout safetensors need neither torch nor pickles.
WEIGHT_FILES = (
    SAFE_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    FLAX_WEIGHTS_NAME,
    FLAX_WEIGHTS_INDEX_NAME,
    PT_WEIGHTS_NAME,
    PT_WEIGHTS_INDEX_NAME,
)


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not fit the model."""


# --- atomic writes -------------------------------------------------------------------------------
def _temp_name(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot sync a directory
        pass
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make renames in `path` durable (a no-op where the filesystem cannot)."""
    try:
        _fsync(os.fspath(path))
    except OSError:
        pass


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path in the target's directory; rename it onto `path` on success.

    The file is created with mode 0o666 and the kernel applies the user's umask, as for any
    `open(path, "w")` (mkstemp would give 0600).
    """
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _temp_name(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


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


# --- whole-checkpoint saves ----------------------------------------------------------------------
@dataclass(frozen=True)
class WeightsFormat:
    weights_name: str
    index_name: str
    write: Callable[[dict[str, np.ndarray], str], None]  # one file, written where it is told
    write_single: Callable[[dict[str, np.ndarray], str], None] | None = None  # unsharded, if it differs


def _staged(directory: str, name: str, write: Callable[[str], None]) -> str:
    """Write a file under a temporary name beside `name`; nothing refers to it yet. The name keeps the
    extension, because a loader may read it (through the first index) before it gets its own name."""
    stem, ext = name.rsplit(".", 1)
    path = os.path.join(directory, f".{stem}.{secrets.token_hex(6)}.{ext}")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(path)
        _fsync(path)
    except BaseException:
        os.remove(path)
        raise
    return path


def _link_into_place(staged: str, final: str) -> None:
    """Give `staged` the name `final` too (a hard link, else a copy), replacing `final` atomically."""
    tmp = _temp_name(final)
    try:
        os.link(staged, tmp)
    except OSError:  # no hard links on this filesystem
        shutil.copyfile(staged, tmp)
        _fsync(tmp)
    os.replace(tmp, final)


def _index_json(names: dict[str, list[str]], tensors: dict[str, np.ndarray], metadata: dict[str, Any]) -> str:
    weight_map = {tensor: filename for filename, group in names.items() for tensor in group}
    total = sum(a.nbytes for a in tensors.values())
    return json.dumps({"metadata": {"total_size": total, **metadata}, "weight_map": weight_map}, indent=2) + "\n"


def save_weights(
    tensors: dict[str, np.ndarray],
    directory: str | os.PathLike,
    fmt: str,
    max_shard_size: int | str = "10GB",
    metadata: dict[str, Any] | None = None,
) -> list[str]:
    """Write a checkpoint's weights in `fmt` (see `WEIGHT_FORMATS`): one file, or shards and an index.

    The whole checkpoint replaces the previous one (of any format) atomically: a save killed at any
    moment leaves a directory that loads either the old weights or the new ones, never a mix.
    Every new file is first written under a temporary name. One atomic step then makes the new set
    the one a loader picks (`WEIGHT_FILES` order): renaming the single file or the index into place,
    or removing the old file that outranks it. Only then are the files of the old checkpoint
    removed. Shards keep transformers' names: a new index first names the staged shards, the
    shards are linked to their final names, and a second index names those.
    """
    spec = WEIGHT_FORMATS[fmt]
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    groups = shard_names(tensors, parse_size(max_shard_size))
    staged: dict[str, str] = {}  # final name -> staged path
    named_by_index = False  # the index names the staged paths: they must stay
    try:
        if len(groups) == 1:
            write = spec.write_single or spec.write
            staged[spec.weights_name] = _staged(directory, spec.weights_name, lambda p: write(tensors, p))
            os.replace(staged[spec.weights_name], os.path.join(directory, spec.weights_name))
            keep = [spec.weights_name]
        else:
            names = {_shard_filename(spec.weights_name, i, len(groups)): group for i, group in enumerate(groups, 1)}
            for name, group in names.items():
                staged[name] = _staged(directory, name, lambda p, g=group: spec.write({n: tensors[n] for n in g}, p))
            index_path = os.path.join(directory, spec.index_name)
            by_staged_name = {os.path.basename(staged[name]): group for name, group in names.items()}
            atomic_write_text(index_path, _index_json(by_staged_name, tensors, metadata or {}))
            named_by_index = True
            for name, path in staged.items():
                _link_into_place(path, os.path.join(directory, name))
            atomic_write_text(index_path, _index_json(names, tensors, metadata or {}))
            named_by_index = False
            keep = [*names, spec.index_name]
    finally:  # a save that fails before the switch leaves the previous checkpoint as it was
        for path in [] if named_by_index else staged.values():
            if os.path.exists(path):
                os.remove(path)
    _remove_superseded(directory, keep)
    fsync_dir(directory)
    return keep


def _remove_superseded(directory: str, keep: list[str]) -> None:
    """Remove the weights of earlier saves: first their top files (one may outrank the new
    checkpoint, and removing it is the switch), then shards and temporaries nothing names."""
    for name in WEIGHT_FILES:
        if name not in keep and os.path.isfile(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    for entry in os.listdir(directory):
        if entry not in keep and (_SHARD_RE.fullmatch(entry) or _STAGED_RE.fullmatch(entry)):
            os.remove(os.path.join(directory, entry))


def write_state_dict(
    tensors: dict[str, np.ndarray],
    directory: str | os.PathLike,
    *,
    max_shard_size: int | str = "10GB",
    safe_serialization: bool = True,
) -> list[str]:
    """Write a PyTorch-layout state dict as safetensors (default) or torch .bin, sharded past the limit."""
    return save_weights(tensors, directory, "safetensors" if safe_serialization else "bin", max_shard_size)


# --- shard indexes -------------------------------------------------------------------------------
def checkpoint_root(path: str | os.PathLike) -> str:
    """The directory a checkpoint's files must stay in: the one holding `path`, or for a Hugging
    Face cache snapshot (`models--org--name/snapshots/REV/...`, whose files link into `../../blobs`)
    the repo's cache folder."""
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    parts = directory.split(os.sep)
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots" and parts[i - 1].startswith(("models--", "datasets--", "spaces--")):
            return os.sep.join(parts[:i]) or os.sep
    return directory


def check_inside(path: str, root: str, what: str) -> str:
    """`path`, unless it resolves (symlinks followed) outside `root`."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root:
        raise CheckpointError(
            f"{what} resolves to {real}, outside the checkpoint directory {root}. A checkpoint may only "
            "read its own files: copy the file into the directory (not a symlink out of it), or fix the index."
        )
    return path


def read_weight_map(index_path: str | os.PathLike) -> dict[str, str]:
    """`{tensor name: shard file name}` of a `*.index.json`; every file name must be a relative path
    that stays inside the directory (no `..`, no absolute path)."""
    index_path = os.fspath(index_path)
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index_path} is not a valid shard index ({e!r}).") from e
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index_path} is not a valid shard index: its weight_map is not an object.")
    for name, shard in weight_map.items():
        parts = PurePosixPath(shard).parts if isinstance(shard, str) else ()
        if not parts or ".." in parts or "\\" in shard or os.path.isabs(shard) or shard.startswith("~"):
            raise CheckpointError(
                f"The shard index {index_path} maps {name!r} to {shard!r}: a shard must be a file name relative "
                "to the index's directory, inside it. The index is corrupt or hostile."
            )
    return weight_map


def read_index(index_path: str | os.PathLike) -> dict[str, str]:
    """Return `{tensor name: shard path}` of a `*.index.json`, checking every shard is inside the
    checkpoint directory and exists."""
    index_path = os.fspath(index_path)
    directory, root = os.path.dirname(index_path), checkpoint_root(index_path)
    out = {}
    for name, shard in read_weight_map(index_path).items():
        out[name] = check_inside(os.path.join(directory, shard), root, f"Shard {shard!r} of {index_path}")
    missing = sorted({p for p in out.values() if not os.path.exists(p)})
    if missing:
        raise CheckpointError(
            f"The shard index {index_path} names files that are not there: "
            f"{[os.path.basename(p) for p in missing]}. Download or copy the missing shards next to the index."
        )
    return out


# --- safetensors ---------------------------------------------------------------------------------
def _safetensors_header(path: str) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file and its length, once the `safetensors` library has checked
    the file against the format's rules (offsets inside the data, contiguous and not overlapping,
    consistent with dtype and shape; `__metadata__` a map of strings)."""
    from safetensors import SafetensorError, safe_open

    size = os.path.getsize(path)
    if size < 8:
        raise CheckpointError(f"{path} is truncated ({size} bytes): it is not a safetensors file.")
    try:
        with safe_open(path, framework="numpy"):
            pass
    except SafetensorError as e:
        raise CheckpointError(f"{path} has a corrupt safetensors header: {e}.") from None
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)), n


_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_, "C64": np.complex64,
}


def read_safetensors(path: str | os.PathLike, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """Read tensors (all, or those in `names`) as numpy arrays over a memory map of the file.

    The `safetensors` library checks the file; the arrays are views of a memory map, so nothing is
    copied until used (its own numpy loader copies every tensor and knows no float8).
    """
    import ml_dtypes

    path = os.fspath(path)
    header, header_length = _safetensors_header(path)
    header.pop("__metadata__", None)
    start = 8 + header_length
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if names is not None and name not in names:
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {info['dtype']}, which flaxformers does not "
                                  f"read; it reads {sorted(_SAFETENSORS_DTYPES)}.")
        dtype = np.dtype(getattr(ml_dtypes, dtype) if isinstance(dtype, str) else dtype)
        begin, end = (start + o for o in info["data_offsets"])
        out[name] = data[begin:end].view(dtype).reshape(info["shape"])
    return out


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    return _safetensors_header(os.fspath(path))[0].get("__metadata__") or {}


def _write_safetensors(tensors: dict[str, np.ndarray], path: str) -> None:
    from safetensors.numpy import save

    # np.require keeps 0-d tensors 0-d (ascontiguousarray makes them [1]): CLIP's logit_scale, BatchNorm's counter
    data = save({k: np.require(v, requirements="C") for k, v in tensors.items()}, metadata={"format": "pt"})
    with open(path, "wb") as f:
        f.write(data)


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
    _check_param_tree(state, path)
    return state


def _check_param_tree(tree: Any, path: str, at: str = "") -> None:
    """A parameter tree is dicts with string keys down to arrays (or numbers)."""
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path} does not hold a parameter dict.")
    for key, value in tree.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path} holds a parameter tree with the non-string key {key!r}; it is corrupt.")
        if isinstance(value, dict):
            _check_param_tree(value, path, f"{at}{key}/")
        elif not isinstance(value, np.ndarray | np.generic | int | float):
            raise CheckpointError(f"{path} holds a {type(value).__name__} at {at}{key}, not an array; it is corrupt.")


def _write_msgpack(tree: dict[str, Any], path: str) -> None:
    from flax.serialization import msgpack_serialize

    with open(path, "wb") as f:
        f.write(msgpack_serialize(tree))


def _write_msgpack_tree(tensors: dict[str, np.ndarray], path: str) -> None:
    """One `flax_model.msgpack`: the nested tree of '/'-joined Flax paths."""
    tree: dict[str, Any] = {}
    for name, value in tensors.items():
        *parents, leaf = name.split("/")
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    _write_msgpack(tree, path)


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
    if not isinstance(state, dict):
        raise CheckpointError(f"{os.fspath(path)} does not hold a state dict.")
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


def _write_torch_bin(tensors: dict[str, np.ndarray], path: str) -> None:
    import torch

    def to_torch(array: np.ndarray) -> torch.Tensor:
        array = np.array(array, copy=True, order="C")  # writable: torch rejects read-only memory maps
        if array.dtype.name == "bfloat16":  # torch.from_numpy knows no ml_dtypes
            return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(array)

    torch.save({k: to_torch(v) for k, v in tensors.items()}, path)


# --- one entry point ------------------------------------------------------------------------------
WEIGHT_FORMATS = {
    "safetensors": WeightsFormat(SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, _write_safetensors),
    # shards hold flat '/'-joined Flax paths, as transformers 4.x wrote them; one file holds the tree
    "msgpack": WeightsFormat(FLAX_WEIGHTS_NAME, FLAX_WEIGHTS_INDEX_NAME, _write_msgpack, _write_msgpack_tree),
    "bin": WeightsFormat(PT_WEIGHTS_NAME, PT_WEIGHTS_INDEX_NAME, _write_torch_bin),
}
_SHARD_RE = re.compile("|".join(
    rf"{re.escape(stem)}-\d{{5}}-of-\d{{5}}\.{re.escape(ext)}"
    for stem, ext in (spec.weights_name.rsplit(".", 1) for spec in WEIGHT_FORMATS.values())
))
# temporaries of `atomic_path`, `_staged` and `_link_into_place` for weights files, left by a killed save
_STAGED_RE = re.compile(
    rf"\.(?:{'|'.join(map(re.escape, WEIGHT_FILES))}|{_SHARD_RE.pattern})\.[0-9a-f]{{12}}\.tmp"
    + "".join(rf"|\.{re.escape(stem)}(?:-\d{{5}}-of-\d{{5}})?\.[0-9a-f]{{12}}\.{re.escape(ext)}"
              for stem, ext in (spec.weights_name.rsplit(".", 1) for spec in WEIGHT_FORMATS.values()))
)


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

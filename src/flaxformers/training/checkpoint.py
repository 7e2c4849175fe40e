"""Resumable train-state checkpoints, written atomically.

A checkpoint is a directory `checkpoint-{step:08d}/` holding `train_state.msgpack` (params,
optimizer state, step and RNG) and `meta.json`. It is written under a temporary name and renamed
into place, then the `latest` file is replaced atomically: a run killed at any moment leaves
either the previous checkpoint or the new one, never a torn one. Older checkpoints are pruned.

Multi-host: every process calls `save_train_state`; the state is gathered and process 0 writes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from typing import Any

import jax
import numpy as np
from flax import serialization

from flaxformers.checkpoints.io import atomic_write_text, fsync_dir

STATE_NAME = "train_state.msgpack"
META_NAME = "meta.json"
LATEST_NAME = "latest"
_CHECKPOINT_RE = re.compile(r"checkpoint-(\d{8})")


def _to_host(tree: Any) -> Any:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        tree = multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def save_train_state(directory: str | os.PathLike, state: Any, step: int, meta: dict[str, Any] | None = None,
                     keep: int = 2) -> str:
    """Write `state` as `directory/checkpoint-{step}` atomically; keep the newest `keep` checkpoints."""
    directory = os.fspath(directory)
    host_state = _to_host(state)
    final = os.path.join(directory, f"checkpoint-{step:08d}")
    if jax.process_index() != 0:
        return final
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".checkpoint-{step:08d}.{secrets.token_hex(6)}.tmp")
    os.mkdir(tmp)  # mode 0o777 less the user's umask (mkdtemp would give 0700)
    try:
        with open(os.path.join(tmp, STATE_NAME), "wb") as f:
            f.write(serialization.to_bytes(host_state))
            f.flush()
            os.fsync(f.fileno())
        with open(os.path.join(tmp, META_NAME), "w", encoding="utf-8") as f:
            json.dump({"step": int(step), **(meta or {})}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(final):  # re-saving a step: the old one stays whole (aside) until the new is in
            os.replace(final, os.path.join(directory, f".checkpoint-{step:08d}.{secrets.token_hex(6)}.old"))
        os.replace(tmp, final)
        fsync_dir(directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(os.path.join(directory, LATEST_NAME), os.path.basename(final) + "\n")
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for entry in os.listdir(directory):  # what saves killed midway left behind
        if entry.startswith(".checkpoint-") and entry.endswith((".tmp", ".old")):
            shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)
    return final


def list_checkpoints(directory: str | os.PathLike) -> list[str]:
    """Complete checkpoints under `directory`, oldest first."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    found = []
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        if _CHECKPOINT_RE.fullmatch(entry) and os.path.exists(os.path.join(path, META_NAME)):
            found.append(path)
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> str | None:
    """The checkpoint `latest` names, else the newest complete one, else None."""
    directory = os.fspath(directory)
    pointer = os.path.join(directory, LATEST_NAME)
    if os.path.exists(pointer):
        with open(pointer, encoding="utf-8") as f:
            path = os.path.join(directory, f.read().strip())
        if os.path.exists(os.path.join(path, META_NAME)):
            return path
    found = list_checkpoints(directory)
    return found[-1] if found else None


def load_train_state(path: str | os.PathLike, target: Any) -> tuple[Any, dict[str, Any]]:
    """Restore a checkpoint into the structure of `target` (host arrays); returns (state, meta)."""
    path = os.fspath(path)
    with open(os.path.join(path, META_NAME), encoding="utf-8") as f:
        meta = json.load(f)
    with open(os.path.join(path, STATE_NAME), "rb") as f:
        data = f.read()
    try:
        state = serialization.from_bytes(target, data)
    except (ValueError, KeyError) as e:
        raise ValueError(
            f"The checkpoint {path} does not fit this run's train state ({e}). Resume with the same model, "
            "optimizer and options, or start a new --output-dir."
        ) from e
    return state, meta

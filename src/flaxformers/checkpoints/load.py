"""From a directory or repo id to Flax params: pick the weights file, read it, convert it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import (
    ConversionRules,
    FlatParams,
    LoadReport,
    add_collections,
    drop_collections,
    flatten,
    state_dict_to_flax,
    unflatten,
)
from flaxformers.checkpoints.hub import ModelNotFoundError, resolve_file, resolve_first
from flaxformers.progress import progress_bar


def resolve_weights(path_or_repo_id: str, hub_kwargs: dict[str, Any]) -> tuple[str, list[str]]:
    """Which weights format the checkpoint has, and the local paths of its file(s)."""
    found = resolve_first(path_or_repo_id, io.WEIGHT_FILES, **hub_kwargs)
    if found is None:
        raise ModelNotFoundError(
            f"{path_or_repo_id!r} has no weights: expected one of {list(io.WEIGHT_FILES)} (or pass gguf_file=)."
        )
    name, path = found
    if not name.endswith(".index.json"):
        return name, [path]
    # Resolve every shard through the same route, so Hub shards are fetched or found in the cache;
    # the names are checked first, so that none reaches outside the checkpoint.
    shard_names = sorted(set(io.read_weight_map(path).values()))
    root = io.checkpoint_root(path)
    paths = []
    for shard in shard_names:
        try:
            shard_path = resolve_file(path_or_repo_id, shard, **hub_kwargs)
        except ModelNotFoundError as e:
            raise io.CheckpointError(
                f"The shard index {name} of {path_or_repo_id!r} names {shard!r}, which is missing: {e}"
            ) from e
        paths.append(io.check_inside(shard_path, root, f"Shard {shard!r} of {path}"))
    return name, [path, *paths]


def read_msgpack_shards(shards: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """The nested param tree of sharded `flax_model-*.msgpack` files (transformers 4.x shards hold flat
    '/'-joined names)."""
    tree: FlatParams = {}
    for shard in shards:
        tree.update({tuple("/".join(k).split("/")): v for k, v in flatten(io.read_msgpack(shard)).items()})
    return unflatten(tree)


def read_checkpoint(
    name: str, paths: list[str], *, allow_pickle: bool = False
) -> tuple[str, dict[str, Any]]:
    """Read weights: ('pt', flat state dict) or ('flax', nested param tree). `name` and `paths` are
    what `resolve_weights` returned (the index first, then its shards, already checked)."""
    if name == io.FLAX_WEIGHTS_NAME:
        return "flax", io.read_msgpack(paths[0])
    if name == io.FLAX_WEIGHTS_INDEX_NAME:
        return "flax", read_msgpack_shards(paths[1:])
    shard_paths = paths[1:] if name.endswith(".index.json") else paths
    state: dict[str, np.ndarray] = {}
    flax_layout = False
    for shard in shard_paths:
        if shard.endswith(".safetensors"):
            flax_layout = io.safetensors_metadata(shard).get("format") == "flax"
        state.update(io.read_weights_file(shard, allow_pickle=allow_pickle))
    if flax_layout:  # transformers 4.x Flax wrote safetensors of Flax paths joined by '.'
        return "flax", unflatten({tuple(k.split(".")): v for k, v in state.items()})
    return "pt", state


def flax_tree_to_model(
    tree: dict[str, Any], model_shapes: FlatParams, rules: ConversionRules, *, ignore_mismatched_sizes: bool
) -> tuple[FlatParams, LoadReport]:
    """A Flax param tree (msgpack) onto the model: add or strip the base-model prefix, check shapes."""
    model_shapes, roots = drop_collections(model_shapes, rules)
    if roots:  # {"params": ..., "batch_stats": ...}: the prefix sits inside each collection
        tree = unflatten(drop_collections(flatten(tree), rules)[0])
    prefix = rules.base_model_prefix
    model_roots = {p[0] for p in model_shapes}
    if prefix in tree and prefix not in model_roots:
        tree = tree[prefix]
    elif prefix in model_roots and prefix not in tree:
        tree = {prefix: tree}
    flat = {k: np.asarray(v) for k, v in flatten(tree).items()}
    report = LoadReport()
    params: FlatParams = {}
    for path, shape in progress_bar(model_shapes.items(), "Loading weights", total=len(model_shapes)):
        if path not in flat:
            report.missing.append("/".join(path))
        elif tuple(flat[path].shape) != tuple(shape.shape):
            report.mismatched.append(("/".join(path), tuple(flat[path].shape), tuple(shape.shape)))
        else:
            params[path] = flat[path]
    report.unexpected = ["/".join(p) for p in flat if p not in model_shapes]
    report.check_shapes(ignore_mismatched_sizes)
    return add_collections(params, report, roots)


def load_params(
    path_or_repo_id: str | os.PathLike,
    model_shapes: FlatParams,
    rules: ConversionRules,
    *,
    hub_kwargs: dict[str, Any],
    ignore_mismatched_sizes: bool = False,
    allow_pickle: bool = False,
    state_dict: dict[str, np.ndarray] | None = None,
    place: Callable[[tuple[str, ...], np.ndarray], Any] | None = None,
) -> tuple[FlatParams, LoadReport]:
    """Params for a model from its checkpoint (or from a given PyTorch-layout `state_dict`).

    With `place(path, array)` (e.g. onto a device mesh) each converted tensor is handed over as
    it is made. Safetensors (one file or sharded) are memory maps, so no full host copy is made.
    """
    if state_dict is None:
        name, paths = resolve_weights(os.fspath(path_or_repo_id), hub_kwargs)
        kind, content = read_checkpoint(name, paths, allow_pickle=allow_pickle)
    else:
        kind, content = "pt", state_dict
    if kind == "flax":
        params, report = flax_tree_to_model(content, model_shapes, rules,
                                            ignore_mismatched_sizes=ignore_mismatched_sizes)
        return (params if place is None else {p: place(p, v) for p, v in params.items()}), report
    return state_dict_to_flax(content, model_shapes, rules, ignore_mismatched_sizes=ignore_mismatched_sizes,
                              place=place)

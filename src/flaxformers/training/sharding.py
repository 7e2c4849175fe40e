"""Sharding on a `jax.sharding.Mesh`: data, FSDP and tensor parallelism from rules that are data.

The mesh has three named axes. `data` splits the batch. `fsdp` splits the batch too, and shards
each weight along its non-tensor dimension, so that XLA gathers it just in time. `tensor` splits
attention heads and MLP width (column-parallel in-projections, row-parallel out-projections).
A family's rules map a regex on the '/'-joined param path to a `PartitionSpec` of those names;
an axis the mesh lacks, or one that does not divide the dimension, is dropped from the spec.
Stacked (scan-over-layers) params get an unsharded leading layer axis.

Multi-host: call `jax.distributed.initialize()` first in every process, build the mesh over
`jax.devices()` (all hosts); `shard_batch` takes each process's slice of the global batch and
`from_pretrained(..., mesh=mesh)` reads only what each host's devices hold, tensor by tensor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from flaxformers import registry
from flaxformers.nn.stack import SCAN_KEY

DATA, FSDP, TENSOR = "data", "fsdp", "tensor"
MESH_AXES = (DATA, FSDP, TENSOR)
BATCH_AXES = (DATA, FSDP)

Rules = tuple[tuple[str, P], ...]


class _FamilyRules(Mapping):
    """model_type -> rules, read from the family declarations (each rule's axes become a PartitionSpec)."""

    def __getitem__(self, model_type: str) -> Rules:
        return tuple((pattern, P(*axes)) for pattern, axes in registry.partition_rules()[model_type])

    def __iter__(self):
        return iter(registry.partition_rules())

    def __len__(self) -> int:
        return len(registry.partition_rules())


# model_type -> (regex on the param path, PartitionSpec) pairs; anything not named is replicated.
PARTITION_RULES: Mapping[str, Rules] = _FamilyRules()


def partition_rules(model_or_config: Any) -> Rules:
    """The rules of a model's family (by `config.model_type`)."""
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type not in PARTITION_RULES:
        raise ValueError(
            f"No partition rules for model_type={model_type!r}; known: {sorted(PARTITION_RULES)}. "
            "Pass rules= ((regex, PartitionSpec), ...) for your own model."
        )
    return PARTITION_RULES[model_type]


def make_mesh(data: int | None = None, fsdp: int = 1, tensor: int = 1,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ('data', 'fsdp', 'tensor') mesh; `data=None` takes the devices left over."""
    devices = list(jax.devices() if devices is None else devices)
    if data is None:
        if len(devices) % (fsdp * tensor):
            raise ValueError(f"fsdp={fsdp} x tensor={tensor} does not divide the {len(devices)} devices.")
        data = len(devices) // (fsdp * tensor)
    if data * fsdp * tensor != len(devices):
        raise ValueError(
            f"data={data} x fsdp={fsdp} x tensor={tensor} = {data * fsdp * tensor}, but there are "
            f"{len(devices)} devices; make the product equal the device count (or pass devices=)."
        )
    return Mesh(np.asarray(devices, dtype=object).reshape(data, fsdp, tensor), MESH_AXES)


# --- specs ----------------------------------------------------------------------------------------
def path_string(path: Sequence[Any]) -> str:
    """'/'-joined names of a param path or a pytree key path."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                key = getattr(key, attr)
                break
        parts.append(str(key))
    return "/".join(parts)


def spec_for(path: str, shape: Sequence[int], mesh: Mesh, rules: Rules) -> P:
    """The first matching rule's spec, fitted to `shape` and `mesh`."""
    spec: tuple = ()
    for pattern, rule in rules:
        if re.search(pattern, path):
            spec = tuple(rule)
            break
    if f"/{SCAN_KEY}/" in f"/{path}/" and spec:
        spec = (None, *spec)  # the stacked layer axis stays whole: scan slices it per step
    if len(spec) > len(shape):
        return P()  # a rule for another layout; replicating is always correct
    fitted = []
    for dim, axes in zip(shape, spec + (None,) * (len(shape) - len(spec))):
        names = tuple(a for a in ((axes,) if isinstance(axes, str) else axes or ()) if a in mesh.shape)
        size = int(np.prod([mesh.shape[a] for a in names])) if names else 1
        fitted.append(None if size == 1 or dim % size else (names[0] if len(names) == 1 else names))
    while fitted and fitted[-1] is None:
        fitted.pop()
    return P(*fitted)


def tree_shardings(tree: Any, mesh: Mesh, rules: Rules) -> Any:
    """A `NamedSharding` for every array leaf of any pytree (params, optimizer state, train state)."""
    def one(keypath, leaf):
        shape = getattr(leaf, "shape", ())
        return NamedSharding(mesh, spec_for(path_string(keypath), shape, mesh, rules))

    return jax.tree_util.tree_map_with_path(one, tree)


def place(array: Any, sharding: NamedSharding) -> jax.Array:
    """Put a host array on the mesh; each process builds only the shards its devices hold."""
    if isinstance(array, jax.Array) and not isinstance(array, jax.core.Tracer):
        return jax.device_put(array, sharding)
    host = np.asarray(array)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_params(params: Any, model: Any, mesh: Mesh, rules: Rules | None = None) -> Any:
    """Place a param tree on `mesh` by the model family's rules (arrays already there are moved)."""
    rules = partition_rules(model) if rules is None else rules
    return jax.tree_util.tree_map(place, params, tree_shardings(params, mesh, rules))


def param_placer(model: Any, mesh: Mesh, rules: Rules | None = None) -> Callable[[tuple[str, ...], Any], jax.Array]:
    """`place(path, host_array)` for loaders that convert one tensor at a time."""
    rules = partition_rules(model) if rules is None else rules

    def put(path: tuple[str, ...], array: Any) -> jax.Array:
        shape = np.shape(array)
        return place(array, NamedSharding(mesh, spec_for("/".join(path), shape, mesh, rules)))

    return put


# --- batches --------------------------------------------------------------------------------------
def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Rows over every batch axis the mesh has (data and fsdp); the rest replicated."""
    axes = tuple(a for a in BATCH_AXES if a in mesh.shape)
    return NamedSharding(mesh, P(axes if axes else None, *([None] * (ndim - 1))))


def shard_batch(batch: dict[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
    """A host batch onto the mesh. Multi-host: every process passes its own rows (its slice)."""
    rows = int(np.prod([mesh.shape[a] for a in BATCH_AXES if a in mesh.shape]))

    def put(x):
        x = np.asarray(x)
        global_rows = x.shape[0] * jax.process_count()
        if global_rows % rows:
            raise ValueError(
                f"The batch has {global_rows} rows, which the mesh's {rows} data-parallel shards do not divide; "
                f"use a batch size that is a multiple of {rows}."
            )
        return jax.make_array_from_process_local_data(batch_sharding(mesh, x.ndim), x)

    return {k: put(v) for k, v in batch.items()}

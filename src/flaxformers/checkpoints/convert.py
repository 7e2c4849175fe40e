"""PyTorch `state_dict` <-> Flax param tree, by rules that are data.

A Flax param path `('transformer', 'h', '0', 'attn', 'c_attn', 'kernel')` corresponds to the PyTorch
name `transformer.h.0.attn.c_attn.weight`: the module path is shared, only the leaf name and the
layout change, per `LEAF_RULES`. Families add data, not code: legacy-name renames, names to ignore,
and the base-model prefix (`transformer.`, `model.`, `bert.`) that head checkpoints carry.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flaxformers.checkpoints.io import CheckpointError
from flaxformers.progress import progress_bar

FlatParams = dict[tuple[str, ...], Any]

# Flax leaf -> (PyTorch leaf, does the layout transpose?). Kernels are [in, out] in Flax Dense
# and [out, in] in torch Linear; GPT-2 keeps them the other way round on both sides, so it is
# a transpose either way.
LEAF_RULES: dict[str, tuple[str, bool]] = {
    "kernel": ("weight", True),
    "embedding": ("weight", False),
    "scale": ("weight", False),
    "bias": ("bias", False),
    "weight": ("weight", False),
}
# Legacy PyTorch names found in old checkpoints (TF-converted BERT uses gamma/beta).
LEGACY_RENAMES: tuple[tuple[str, str], ...] = ((r"\.gamma$", ".weight"), (r"\.beta$", ".bias"))


@dataclass(frozen=True)
class ConversionRules:
    """What a model class says about its checkpoints."""

    base_model_prefix: str
    renames: tuple[tuple[str, str], ...] = ()  # regex -> replacement on checkpoint names, applied first
    ignore_unexpected: tuple[str, ...] = ()  # regexes of checkpoint names that may be left over
    tied: dict[str, str] = field(default_factory=dict)  # checkpoint name -> the name it is tied to


def flatten(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> FlatParams:
    out: FlatParams = {}
    for key, value in tree.items():
        if isinstance(value, dict) or hasattr(value, "items") and not hasattr(value, "shape"):
            out.update(flatten(dict(value), prefix + (key,)))
        else:
            out[prefix + (key,)] = value
    return out


def unflatten(flat: FlatParams) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def pt_name(path: tuple[str, ...]) -> tuple[str, bool]:
    """The PyTorch name of a Flax path, and whether the layout transposes."""
    leaf, transpose = LEAF_RULES.get(path[-1], (path[-1], False))
    return ".".join(path[:-1] + (leaf,)), transpose


def _to_flax_layout(array: np.ndarray, transpose: bool) -> np.ndarray:
    return np.ascontiguousarray(array.T) if transpose and array.ndim == 2 else array


@dataclass
class LoadReport:
    missing: list[str] = field(default_factory=list)  # Flax paths with no checkpoint tensor
    unexpected: list[str] = field(default_factory=list)  # checkpoint names the model has no place for
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (name, ckpt shape, model shape)

    def check_shapes(self, ignore_mismatched_sizes: bool, model_name: str = "the model") -> None:
        """Refuse tensors whose shape is not the model's, unless told to leave them at random."""
        if self.mismatched and not ignore_mismatched_sizes:
            lines = "\n".join(f"  {n}: checkpoint {c}, model {m}" for n, c, m in self.mismatched)
            raise CheckpointError(
                f"Checkpoint tensors do not fit {model_name}'s shapes:\n{lines}\nCheck that config.json matches the "
                "weights, or pass ignore_mismatched_sizes=True to initialise these tensors at random instead."
            )

    def log(self, logger: logging.Logger, model_name: str, path: str) -> None:
        """transformers 4.57's loading warnings: weights left unused, newly initialized, of another shape."""
        if self.unexpected:
            logger.warning("Some weights of the model checkpoint at %s were not used when initializing %s: %s",
                           path, model_name, self.unexpected)
        train = "You should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference."
        if self.missing:
            logger.warning("Some weights of %s were not initialized from the model checkpoint at %s and are newly "
                           "initialized: %s\n%s", model_name, path, self.missing, train)
        if self.mismatched:
            shapes = "\n".join(f"- {name}: found shape {ckpt} in the checkpoint and {own} in the model instantiated"
                                for name, ckpt, own in self.mismatched)
            logger.warning("Some weights of %s were not initialized from the model checkpoint at %s and are newly "
                           "initialized because the shapes did not match:\n%s\n%s", model_name, path, shapes, train)


def _prefix_fix(names: list[str], model_paths: list[tuple[str, ...]], prefix: str) -> tuple[str, str]:
    """How to rewrite checkpoint names for the model: (strip, add) prefixes, '' when none."""
    model_has = bool(prefix) and any(p[0] == prefix for p in model_paths)
    ckpt_has = bool(prefix) and any(n.startswith(prefix + ".") for n in names)
    if model_has and not ckpt_has:
        return "", prefix + "."  # base checkpoint into a model with a head
    if ckpt_has and not model_has:
        return prefix + ".", ""  # head checkpoint into the base model
    return "", ""


def state_dict_to_flax(
    state_dict: dict[str, np.ndarray],
    model_shapes: FlatParams,
    rules: ConversionRules,
    *,
    ignore_mismatched_sizes: bool = False,
    place: Any = None,
) -> tuple[FlatParams, LoadReport]:
    """Map PyTorch names and layouts onto the model's Flax paths. Shapes are checked, nothing is cast.

    Values may be lazy (anything `np.asarray` reads); `place(path, array)`, when given, takes each
    converted tensor at once (e.g. onto a device mesh), so at most one is held on the host.
    """
    renamed: dict[str, np.ndarray] = {}
    for name, array in state_dict.items():
        for pattern, repl in LEGACY_RENAMES + rules.renames:
            name = re.sub(pattern, repl, name)
        renamed[name] = array
    strip, add = _prefix_fix(list(renamed), list(model_shapes), rules.base_model_prefix)
    if strip:
        renamed = {n.removeprefix(strip): a for n, a in renamed.items()}
    elif add:
        head_roots = {p[0] for p in model_shapes if p[0] != rules.base_model_prefix}
        renamed = {n if n.split(".")[0] in head_roots else add + n: a for n, a in renamed.items()}

    report = LoadReport()
    params: FlatParams = {}
    used: set[str] = set()
    for path, shape_struct in progress_bar(model_shapes.items(), "Loading weights", total=len(model_shapes)):
        name, transpose = pt_name(path)
        if name not in renamed:
            report.missing.append("/".join(path))
            continue
        used.add(name)
        array = _to_flax_layout(np.asarray(renamed[name]), transpose)
        expected = tuple(shape_struct.shape)
        if tuple(array.shape) != expected:
            report.mismatched.append((name, tuple(array.shape), expected))
            continue
        params[path] = array if place is None else place(path, array)
    ignore = [re.compile(p) for p in rules.ignore_unexpected] + [re.compile(re.escape(k) + "$") for k in rules.tied]
    for name in renamed:
        if name not in used and not any(p.search(name) for p in ignore):
            report.unexpected.append(name)
    report.check_shapes(ignore_mismatched_sizes)
    return params, report


def flax_to_state_dict(params: FlatParams, rules: ConversionRules) -> dict[str, np.ndarray]:
    """Flax params -> PyTorch names and layouts (the inverse of `state_dict_to_flax`)."""
    out = {}
    for path, value in params.items():
        name, transpose = pt_name(path)
        array = np.asarray(value)
        out[name] = np.ascontiguousarray(array.T) if transpose and array.ndim == 2 else array
    return out

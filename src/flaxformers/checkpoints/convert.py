"""PyTorch `state_dict` <-> Flax param tree, by rules that are data.

A Flax param path `('transformer', 'h', '0', 'attn', 'c_attn', 'kernel')` corresponds to the PyTorch
name `transformer.h.0.attn.c_attn.weight`: the module path is shared, only the leaf name and the
layout change, per `LEAF_RULES`. Families add data, not code: names to ignore, tied copies,
and the base-model prefix (`transformer.`, `model.`, `bert.`) that head checkpoints carry.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np

from flaxformers.checkpoints.io import CheckpointError
from flaxformers.progress import progress_bar

FlatParams = dict[tuple[str, ...], Any]

# Flax leaf -> (PyTorch leaf, does the layout transpose?). Kernels are [in, out] in Flax Dense
# and [out, in] in torch Linear; GPT-2 keeps them the other way round on both sides, so it is
# a transpose either way. Convolution kernels are [*spatial, in, out] in Flax and [out, in, *spatial]
# in torch (`kernel_to_flax`). Batch-norm statistics live in Flax's `batch_stats` collection.
LEAF_RULES: dict[str, tuple[str, bool]] = {
    "kernel": ("weight", True),
    "embedding": ("weight", False),
    "scale": ("weight", False),
    "bias": ("bias", False),
    "weight": ("weight", False),
    "mean": ("running_mean", False),
    "var": ("running_var", False),
    # weight norm (4.57 Flax's names): PyTorch's parametrization of `weight` along its last axis
    "weight_g": ("parametrizations.weight.original0", False),
    "weight_v": ("parametrizations.weight.original1", False),
}
# Legacy PyTorch names found in old checkpoints (TF-converted BERT uses gamma/beta).
# Weight norm's `weight_g`/`weight_v` are the names of torch's older `weight_norm`.
LEGACY_RENAMES: tuple[tuple[str, str], ...] = (
    (r"\.gamma$", ".weight"), (r"\.beta$", ".bias"),
    (r"\.weight_g$", ".parametrizations.weight.original0"), (r"\.weight_v$", ".parametrizations.weight.original1"),
)
# PyTorch buffers that no Flax model holds: BatchNorm's step counter (written as 0 on save).
IGNORED_BUFFERS: tuple[str, ...] = (r"\.num_batches_tracked$",)


@dataclass(frozen=True)
class ConversionRules:
    """What a model class says about its checkpoints."""

    base_model_prefix: str
    _: KW_ONLY  # the rest by name: fields get added
    # (regex, replacement) on the name a Flax path spells, for modules 4.57 Flax named otherwise than PyTorch
    renames: tuple[tuple[str, str], ...] = ()
    ignore_unexpected: tuple[str, ...] = ()  # regexes of checkpoint names that may be left over
    tied: dict[str, str] = field(default_factory=dict)  # checkpoint name -> the name it is tied to
    # Variable collections of a model whose state is `{"params": ..., "batch_stats": ...}` (as 4.x Flax
    # kept batch-norm models); empty when the state is the params tree alone.
    collections: tuple[str, ...] = ()


def nested_rules(base_model_prefix: str, parts: dict[str, ConversionRules]) -> ConversionRules:
    """A composite model's rules: each part's, under the part's name (`encoder.`, `decoder.`)."""
    if any(rules.collections for rules in parts.values()):
        raise ValueError("A composite model's parts keep their state in params alone (no batch statistics).")

    def under(name: str, pattern: str) -> str:  # a pattern anchored at a name's start: after the part's name
        return rf"^{re.escape(name)}\." + pattern[1:] if pattern.startswith("^") else pattern

    return ConversionRules(
        base_model_prefix,
        ignore_unexpected=tuple(under(n, p) for n, rules in parts.items() for p in rules.ignore_unexpected),
        tied={f"{n}.{k}": f"{n}.{v}" for n, rules in parts.items() for k, v in rules.tied.items()},
    )


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


def pt_name(path: tuple[str, ...], rules: ConversionRules | None = None) -> tuple[str, bool]:
    """The PyTorch name of a Flax path, and whether the layout transposes."""
    leaf, transpose = LEAF_RULES.get(path[-1], (path[-1], False))
    name = ".".join(path[:-1] + (leaf,))
    for pattern, repl in rules.renames if rules is not None else ():
        name = re.sub(pattern, repl, name)
    return name, transpose


def kernel_to_flax(array: np.ndarray) -> np.ndarray:
    """torch [out, in, *spatial] -> Flax [*spatial, in, out]: a Linear's transpose, a Conv's permutation."""
    return np.ascontiguousarray(np.transpose(array, (*range(2, array.ndim), 1, 0)))


def kernel_to_torch(array: np.ndarray) -> np.ndarray:
    """Flax [*spatial, in, out] -> torch [out, in, *spatial] (the inverse of `kernel_to_flax`)."""
    n = array.ndim
    return np.ascontiguousarray(np.transpose(array, (n - 1, n - 2, *range(n - 2))))


def _to_flax_layout(array: np.ndarray, transpose: bool) -> np.ndarray:
    return kernel_to_flax(array) if transpose and array.ndim >= 2 else array


def drop_collections(flat: FlatParams, rules: ConversionRules | None) -> tuple[FlatParams, dict]:
    """`{(collection, *path): v}` -> `{path: v}` and each path's collection, so that names convert as
    for a params tree (a module's leaves differ between collections: scale/bias vs mean/var)."""
    if rules is None or not rules.collections:
        return flat, {}
    return {path[1:]: v for path, v in flat.items()}, {path[1:]: path[0] for path in flat}


def add_collections(flat: FlatParams, report: LoadReport, roots: dict) -> tuple[FlatParams, LoadReport]:
    """The inverse of `drop_collections`, on loaded params and the paths the report calls missing."""
    if not roots:
        return flat, report
    report.missing = ["/".join((roots[tuple(p.split("/"))], p)) for p in report.missing]
    return {(roots[path], *path): v for path, v in flat.items()}, report


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


def normalize_names(state: dict[str, Any], model_paths: Iterable[tuple[str, ...]],
                    rules: ConversionRules) -> dict[str, Any]:
    """Checkpoint names as the model spells them: legacy names renamed, then the base-model prefix
    added (a base checkpoint into a model with a head) or stripped (a head checkpoint into the base)."""
    renamed: dict[str, Any] = {}
    for name, value in state.items():
        for pattern, repl in LEGACY_RENAMES:
            name = re.sub(pattern, repl, name)
        renamed[name] = value
    model_paths = list(model_paths)
    strip, add = _prefix_fix(list(renamed), model_paths, rules.base_model_prefix)
    if strip:
        return {n.removeprefix(strip): v for n, v in renamed.items()}
    if add:
        head_roots = {p[0] for p in model_paths if p[0] != rules.base_model_prefix}
        return {n if n.split(".")[0] in head_roots else add + n: v for n, v in renamed.items()}
    return renamed


def unexpected_names(names: Iterable[str], used: set[str], rules: ConversionRules) -> list[str]:
    """Checkpoint names the model has no place for, less those it may leave over (buffers, tied copies)."""
    ignore = [re.compile(p) for p in IGNORED_BUFFERS + rules.ignore_unexpected]
    ignore += [re.compile(re.escape(k) + "$") for k in rules.tied]
    return [n for n in names if n not in used and not any(p.search(n) for p in ignore)]


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
    model_shapes, roots = drop_collections(model_shapes, rules)
    if roots and place is not None:
        place_in_collection = place
        place = lambda path, array: place_in_collection((roots[path], *path), array)  # noqa: E731
    renamed = normalize_names(state_dict, model_shapes, rules)
    report = LoadReport()
    params: FlatParams = {}
    used: set[str] = set()
    for path, shape_struct in progress_bar(model_shapes.items(), "Loading weights", total=len(model_shapes)):
        name, transpose = pt_name(path, rules)
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
    report.unexpected = unexpected_names(renamed, used, rules)
    report.check_shapes(ignore_mismatched_sizes)
    return add_collections(params, report, roots)


def flax_to_state_dict(params: FlatParams, rules: ConversionRules | None) -> dict[str, np.ndarray]:
    """Flax params -> PyTorch names and layouts (the inverse of `state_dict_to_flax`)."""
    out = {}
    for path, value in drop_collections(params, rules)[0].items():
        name, transpose = pt_name(path, rules)
        array = np.asarray(value)
        out[name] = kernel_to_torch(array) if transpose and array.ndim >= 2 else array
        if name.endswith(".running_var"):  # BatchNorm's step counter, which Flax does not keep
            out[name.removesuffix("running_var") + "num_batches_tracked"] = np.zeros((), np.int64)
    return out

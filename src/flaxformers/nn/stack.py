"""A stack of transformer blocks: per-layer outputs, hidden-state collection, remat and scan, once.

Blocks are called positionally as `block(hidden, *layer_args, deterministic, init_cache, output_attentions)`
and return `(hidden, self_attention_weights | None, cross_attention_weights | None)`. A block may
return a fourth value: it replaces the last layer arg for the blocks after it (T5's position bias,
which the first layer computes from its own table and the others reuse). The stack names its
children "0", "1", ... so param paths are `.../h/0/...` as in transformers.

Scan-over-layers (`config.scan_layers = True`, which `Model(config, scan_layers=True)` and
`from_pretrained(..., scan_layers=True)` set, or the stack's `scan_layers` field) traces one block and
runs it with `nn.scan` over params stacked on a leading layer axis: compile time stops growing
with depth. Scanned params live under `.../h/scanned/{j}/...`; `unstack_layer_params` and
`stack_layer_params` convert to and from the per-layer tree, which is what checkpoints hold.
Layers must be alike to share one trace. Where they are not (sliding and global attention layers
alternate; an attention scale differs in every layer), the stack
finds the period p of the layer kinds and scans groups of p blocks: layer i = g * p + j lives at
`scanned/{j}` index g, and the last `num_layers % p` layers stay per-layer children `{i}`.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import flax.linen as nn
import jax
import numpy as np

SCAN_KEY = "scanned"  # the child that holds stacked layer params (and cache) in scan mode


def remat_policy(name: str | None) -> Any:
    """`None` recomputes everything; otherwise the name of a `jax.checkpoint_policies` entry."""
    if name is None or callable(name):
        return name
    try:
        return getattr(jax.checkpoint_policies, name)
    except AttributeError:
        raise ValueError(f"Unknown remat policy {name!r}; see jax.checkpoint_policies.") from None


def layer_kinds(block_cls: type, config: Any, num_layers: int) -> list[Hashable]:
    """What makes layer i's computation differ from the others', one hashable per layer.

    A block class may say it with `layer_kind(config, layer_idx)`; otherwise `config.layer_types`
    (e.g. sliding or full attention) is read.
    """
    hook = getattr(block_cls, "layer_kind", None)
    if hook is not None:
        return [hook(config, i) for i in range(num_layers)]
    types = getattr(config, "layer_types", None)
    if types:
        return [types[i] for i in range(num_layers)]
    return [None] * num_layers


def scan_period(kinds: list[Hashable]) -> int:
    """The smallest p with kinds[i] == kinds[i + p] for every i: blocks p apart share one trace."""
    n = len(kinds)
    return next(p for p in range(1, n + 1) if all(kinds[i] == kinds[i + p] for i in range(n - p)))


class _ScanGroup(nn.Module):
    """One scan step: `period` consecutive blocks, collecting what the stack must return."""

    block_cls: Any
    block_kwargs: dict[str, Any]
    period: int
    deterministic: bool
    init_cache: bool
    output_attentions: bool
    output_hidden_states: bool

    @nn.compact
    def __call__(self, hidden: jax.Array, *layer_args: Any) -> tuple[jax.Array, tuple]:
        hiddens, attentions, crosses = [], [], []
        for j in range(self.period):
            hiddens.append(hidden)
            # layer_idx j stands for layers j, j + p, ...: they have the same kind (see scan_period).
            block = self.block_cls(**self.block_kwargs, layer_idx=j, name=str(j))
            hidden, attention, cross, layer_args = _unpack(
                block(hidden, *layer_args, self.deterministic, self.init_cache, self.output_attentions), layer_args
            )
            attentions.append(attention)
            crosses.append(cross)
        return hidden, (
            tuple(hiddens) if self.output_hidden_states else None,
            tuple(attentions) if self.output_attentions else None,
            tuple(crosses) if self.output_attentions and crosses[0] is not None else None,
        )


class LayerStack(nn.Module):
    block_cls: type[nn.Module]
    num_layers: int
    block_kwargs: dict[str, Any]  # config, dtype and the rest, passed to every block
    gradient_checkpointing: bool = False
    remat_policy: Any = None
    scan_layers: bool | None = None  # None: `config.scan_layers` (False when absent)

    @nn.compact
    def __call__(
        self,
        hidden: jax.Array,
        layer_args: tuple = (),
        deterministic: bool = True,
        init_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[jax.Array, tuple | None, tuple | None, tuple | None]:
        block_cls = self.block_cls
        if self.gradient_checkpointing:
            # Argument 0 is the module itself, then hidden and the layer args; the three flags are static.
            first_static = 2 + len(layer_args)
            block_cls = nn.remat(
                block_cls,
                static_argnums=(first_static, first_static + 1, first_static + 2),
                policy=remat_policy(self.remat_policy),
            )
        all_hidden: tuple = ()
        all_attentions: tuple = ()
        all_cross: tuple = ()
        first_unscanned = 0
        config = self.block_kwargs.get("config")
        scan = self.scan_layers if self.scan_layers is not None else getattr(config, "scan_layers", False)
        if scan:
            period = scan_period(layer_kinds(self.block_cls, config, self.num_layers))
            groups = self.num_layers // period
            first_unscanned = groups * period
            scanned = nn.scan(
                _ScanGroup,
                variable_axes={"params": 0, "cache": 0, "intermediates": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(nn.broadcast,) * len(layer_args),
                length=groups,
            )(block_cls, self.block_kwargs, period, deterministic, init_cache, output_attentions,
              output_hidden_states, name=SCAN_KEY)
            hidden, (hiddens, attentions, crosses) = scanned(hidden, *layer_args)
            all_hidden = _unstack_outputs(hiddens, groups)
            all_attentions = _unstack_outputs(attentions, groups)
            all_cross = _unstack_outputs(crosses, groups) if crosses is not None else (None,) * first_unscanned
        for i in range(first_unscanned, self.num_layers):
            if output_hidden_states:
                all_hidden += (hidden,)
            block = block_cls(**self.block_kwargs, layer_idx=i, name=str(i))
            hidden, attention, cross, layer_args = _unpack(
                block(hidden, *layer_args, deterministic, init_cache, output_attentions), layer_args
            )
            all_attentions += (attention,)
            all_cross += (cross,)
        return (
            hidden,
            all_hidden if output_hidden_states else None,
            all_attentions if output_attentions else None,
            all_cross if output_attentions and all_cross and all_cross[0] is not None else None,
        )


def _unpack(outputs: tuple, layer_args: tuple) -> tuple[Any, Any, Any, tuple]:
    """A block's (hidden, attention, cross) and the layer args of the next block (see the module doc)."""
    if len(outputs) == 4:
        layer_args = (*layer_args[:-1], outputs[3])
    return outputs[0], outputs[1], outputs[2], layer_args


def _unstack_outputs(per_offset: tuple | None, groups: int) -> tuple:
    """Scan outputs `per_offset[j]` [G, ...] back to one entry per layer, i = g * p + j."""
    if per_offset is None:
        return ()
    return tuple(per_offset[j][g] for g in range(groups) for j in range(len(per_offset)))


# --- per-layer <-> stacked param trees -------------------------------------------------------------
def _leaf_map(fn, tree: Any) -> Any:
    if isinstance(tree, dict) or hasattr(tree, "items") and not hasattr(tree, "shape"):
        return {k: _leaf_map(fn, v) for k, v in tree.items()}
    return fn(tree)


def _index(leaf: Any, g: int) -> Any:
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(leaf.shape[1:], leaf.dtype, sharding=None)
    return leaf[g]


def is_scanned(tree: Any) -> bool:
    """Whether a param (or cache) tree holds stacked layers anywhere."""
    if not (isinstance(tree, dict) or hasattr(tree, "items") and not hasattr(tree, "shape")):
        return False
    return any(k == SCAN_KEY or is_scanned(v) for k, v in tree.items())


def unstack_layer_params(tree: Any) -> Any:
    """Stacked `.../scanned/{j}/...` [G, ...] -> per-layer `.../{g * p + j}/...`; other leaves as they are.

    Works on arrays and on `jax.ShapeDtypeStruct` trees (to get the per-layer shapes).
    """
    if not (isinstance(tree, dict) or hasattr(tree, "items") and not hasattr(tree, "shape")):
        return tree
    out = {k: unstack_layer_params(v) for k, v in tree.items() if k != SCAN_KEY}
    if SCAN_KEY in tree:
        per_offset = tree[SCAN_KEY]
        period = len(per_offset)
        groups = jax.tree_util.tree_leaves(per_offset)[0].shape[0]
        for g in range(groups):
            for j in range(period):
                out[str(g * period + j)] = _leaf_map(lambda x, g=g: _index(x, g), per_offset[str(j)])
    return out


def stack_layer_params(per_layer: Any, target: Any) -> Any:
    """Per-layer tree -> the stacked layout of `target` (a scanned params or shape tree).

    A stacked leaf whose layers are not all in `per_layer` is left out (a missing param).
    """
    if not (isinstance(target, dict) or hasattr(target, "items") and not hasattr(target, "shape")):
        return per_layer
    out = {}
    for key, sub in target.items():
        if key == SCAN_KEY:
            stacked = _stack_group(per_layer, sub)
            if stacked:
                out[key] = stacked
        elif key in per_layer:
            out[key] = stack_layer_params(per_layer[key], sub)
    return out


def _stack_group(per_layer: dict, per_offset: dict) -> dict:
    from flaxformers.checkpoints.convert import flatten, unflatten

    period = len(per_offset)
    flat_target = flatten(dict(per_offset))
    groups = next(iter(flat_target.values())).shape[0]
    out = {}
    for (j, *rest), _ in flat_target.items():
        layers = []
        for g in range(groups):
            node = per_layer.get(str(g * period + int(j)))
            for key in rest:
                node = node.get(key) if node is not None else None
            layers.append(node)
        if all(x is not None for x in layers):
            xp = np if all(isinstance(x, np.ndarray) for x in layers) else jax.numpy
            out[(j, *rest)] = xp.stack(layers)
    return unflatten(out)

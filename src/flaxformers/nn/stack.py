"""A stack of transformer blocks: per-layer outputs, hidden-state collection and remat, once.

Blocks are called positionally as `block(hidden, *layer_args, deterministic, init_cache, output_attentions)`
and return `(hidden, self_attention_weights | None, cross_attention_weights | None)`. The stack
names its children "0", "1", ... so param paths are `.../h/0/...` as in transformers.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax


def remat_policy(name: str | None) -> Any:
    """`None` recomputes everything; otherwise the name of a `jax.checkpoint_policies` entry."""
    if name is None or callable(name):
        return name
    try:
        return getattr(jax.checkpoint_policies, name)
    except AttributeError:
        raise ValueError(f"Unknown remat policy {name!r}; see jax.checkpoint_policies.") from None


class LayerStack(nn.Module):
    block_cls: type[nn.Module]
    num_layers: int
    block_kwargs: dict[str, Any]  # config, dtype and the rest, passed to every block
    gradient_checkpointing: bool = False
    remat_policy: Any = None

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
            first_static = 1 + len(layer_args)
            block_cls = nn.remat(
                block_cls,
                static_argnums=(first_static, first_static + 1, first_static + 2),
                policy=remat_policy(self.remat_policy),
            )
        all_hidden: tuple = ()
        all_attentions: tuple = ()
        all_cross: tuple = ()
        for i in range(self.num_layers):
            if output_hidden_states:
                all_hidden += (hidden,)
            block = block_cls(**self.block_kwargs, layer_idx=i, name=str(i))
            hidden, attention, cross = block(hidden, *layer_args, deterministic, init_cache, output_attentions)
            all_attentions += (attention,)
            all_cross += (cross,)
        return (
            hidden,
            all_hidden if output_hidden_states else None,
            all_attentions if output_attentions else None,
            all_cross if output_attentions and all_cross and all_cross[0] is not None else None,
        )

"""Between the twins: a Flax GPT-2 and the PyTorch GPT-2 share one checkpoint layout.

Both directions go through the shared converter (`flaxformers.checkpoints.convert`):
Flax params -> `flax_to_state_dict` -> `load_state_dict`, and `state_dict` -> `state_dict_to_flax`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flaxformers.checkpoints.convert import flatten, flax_to_state_dict, state_dict_to_flax, unflatten
from flaxformers.torch.modeling_utils import to_numpy


def torch_from_flax(flax_model: Any, params: dict | None = None, torch_class: Any = None,
                    attn_implementation: str | None = None):
    """The PyTorch twin of a FlaxGPT2Model / FlaxGPT2LMHeadModel, with the same weights (fp32 eval mode)."""
    import jax

    from flaxformers.torch import GPT2LMHeadModel, GPT2Model

    if torch_class is None:
        torch_class = GPT2LMHeadModel if getattr(flax_model, "is_causal_lm", False) else GPT2Model
    params = flax_model.params if params is None else params
    flat = {p: np.asarray(jax.device_get(v)) for p, v in flatten(dict(params)).items()}
    state = flax_to_state_dict(flat, flax_model._conversion_rules(flax_model.config))
    model = torch_class(flax_model.config, attn_implementation=attn_implementation)
    report = model.load_checkpoint_state(state)
    if report.missing or report.unexpected:
        raise ValueError(f"{type(flax_model).__name__} -> {torch_class.__name__}: missing {report.missing}, "
                         f"unexpected {report.unexpected}. Pick the torch class with the same head.")
    return model.float().eval()


def flax_params_from_torch(torch_model: Any, flax_model: Any) -> dict:
    """Params for `flax_model` (any Flax GPT-2 class, e.g. built with `_do_init=False`) from the torch twin."""
    import jax.numpy as jnp
    from flax.core import unfreeze

    state = {name: to_numpy(t) for name, t in torch_model.state_dict().items()}
    shapes = flatten(unfreeze(flax_model.params_shape_tree))
    flat, report = state_dict_to_flax(state, shapes, flax_model._conversion_rules(flax_model.config))
    if report.missing:
        raise ValueError(f"{type(torch_model).__name__} -> {type(flax_model).__name__}: no tensors for "
                         f"{report.missing}.")
    return unflatten({p: jnp.asarray(v) for p, v in flat.items()})


def flax_from_torch(torch_model: Any, flax_class: Any = None, dtype: Any = None):
    """The Flax twin of a PyTorch GPT2Model / GPT2LMHeadModel, with the same weights."""
    import jax.numpy as jnp

    from flaxformers.models.gpt2 import FlaxGPT2LMHeadModel, FlaxGPT2Model

    if flax_class is None:
        flax_class = FlaxGPT2LMHeadModel if hasattr(torch_model, "lm_head") else FlaxGPT2Model
    if getattr(torch_model.config, "pruned_heads", None):
        raise ValueError("The Flax twin has no pruned heads: convert the model before prune_heads().")
    model = flax_class(torch_model.config, dtype=dtype or jnp.float32, _do_init=False)
    model._is_initialized = True  # as from_pretrained does: the params come from the checkpoint
    model.params = flax_params_from_torch(torch_model, model)
    return model

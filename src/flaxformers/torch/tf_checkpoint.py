"""OpenAI's original TensorFlow GPT-2 checkpoints (`model.ckpt`) into the PyTorch twin.

The name mapping is plain Python (`tf_name_to_state_name`) and works on any `(name, array)` list;
only reading the checkpoint needs tensorflow, an optional extra (`pip install tensorflow`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

_LEAVES = {"w": "weight", "g": "weight", "b": "bias"}


def tf_name_to_state_name(tf_name: str) -> str:
    """`model/h3/attn/c_attn/w` -> `h.3.attn.c_attn.weight`; `model/wte` -> `wte.weight` (GPT2Model names)."""
    parts = tf_name.removeprefix("model/").split("/")
    out = []
    for part in parts:
        match = re.fullmatch(r"([A-Za-z_]+?)(\d+)", part)
        if match and match.group(1) == "h":
            out += [match.group(1), match.group(2)]
        else:
            out.append(part)
    if out[-1] in ("wte", "wpe"):
        out.append("weight")
    elif out[-1] in _LEAVES:
        out[-1] = _LEAVES[out[-1]]
    else:
        raise ValueError(f"Unknown TensorFlow GPT-2 variable {tf_name!r}: expected model/wte, model/wpe, "
                         "model/ln_f/{g,b} or model/hN/<module>/{w,b,g}.")
    return ".".join(out)


def load_tf_variables_in_gpt2(model: Any, variables: Iterable[tuple[str, Any]]) -> Any:
    """Copy TF-named arrays (OpenAI's [1, in, out] conv kernels are squeezed) into a twin model."""
    base = getattr(model, "transformer", model)
    own = base.state_dict()
    seen = set()
    with torch.no_grad():
        for tf_name, array in variables:
            name = tf_name_to_state_name(tf_name)
            if name not in own:
                raise ValueError(f"TensorFlow variable {tf_name!r} maps to {name!r}, which {type(base).__name__} "
                                 "does not have; check that config.json matches the checkpoint (n_layer, ...).")
            array = np.asarray(array).squeeze()
            if tuple(array.shape) != tuple(own[name].shape):
                raise ValueError(f"TensorFlow variable {tf_name!r} has shape {list(array.shape)} but {name} is "
                                 f"{list(own[name].shape)}; check n_embd / n_head / vocab_size in config.json.")
            own[name].copy_(torch.from_numpy(np.ascontiguousarray(array)))
            seen.add(name)
    missing = sorted(set(own) - seen)
    if missing:
        raise ValueError(f"The TensorFlow checkpoint has no variables for {missing}.")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    return model


def load_tf_weights_in_gpt2(model: Any, config: Any, gpt2_checkpoint_path: str | os.PathLike) -> Any:
    """Load an original OpenAI TensorFlow GPT-2 checkpoint (e.g. `.../124M/model.ckpt`) into `model`."""
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ImportError(
            "Loading an original TensorFlow GPT-2 checkpoint needs tensorflow, which is not installed: "
            "pip install tensorflow (an optional extra of flaxformers). Or convert the checkpoint once to "
            "safetensors where tensorflow is available."
        ) from e
    path = os.path.abspath(os.fspath(gpt2_checkpoint_path))
    variables = ((name, tf.train.load_variable(path, name)) for name, _ in tf.train.list_variables(path))
    return load_tf_variables_in_gpt2(model, variables)

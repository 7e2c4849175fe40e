"""flaxformers: Hugging Face GPT-2, Gemma, BLOOM and BERT in JAX/Flax, with transformers 4.x's Flax API."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it. Imports are lazy so `import flaxformers` stays fast.
_EXPORTS: dict[str, str] = {
    "PretrainedConfig": "flaxformers.configuration_utils",
    "FlaxPreTrainedModel": "flaxformers.modeling_utils",
    "GenerationConfig": "flaxformers.generation.config",
    "GPT2Config": "flaxformers.models.gpt2",
    "FlaxGPT2Model": "flaxformers.models.gpt2",
    "FlaxGPT2LMHeadModel": "flaxformers.models.gpt2",
    "FlaxGPT2PreTrainedModel": "flaxformers.models.gpt2",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flaxformers' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)

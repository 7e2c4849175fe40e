from typing import Any

from flaxformers.models.gpt2.configuration import GPT2Config

__all__ = ["GPT2Config", "FlaxGPT2Model", "FlaxGPT2LMHeadModel", "FlaxGPT2PreTrainedModel"]


def __getattr__(name: str) -> Any:
    # The Flax classes import jax and flax; the config (used by the PyTorch twin too) does not.
    if name in __all__:
        from flaxformers.models.gpt2 import modeling

        return getattr(modeling, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Generation: GenerationConfig, logits processors, the compiled loop, beam search and streaming.

Imports are lazy: `flaxformers.generation.config` (shared with the PyTorch twin) must not pull in jax.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "GenerationConfig": "flaxformers.generation.config",
    **dict.fromkeys(["GenerationMixin", "FlaxGreedySearchOutput", "FlaxSampleOutput", "FlaxBeamSearchOutput"],
                    "flaxformers.generation.mixin"),
    **dict.fromkeys(["BaseStreamer", "TextStreamer", "TextIteratorStreamer", "TokenIteratorStreamer"],
                    "flaxformers.generation.streamers"),
    **dict.fromkeys(
        [
            "FlaxLogitsProcessor", "FlaxLogitsWarper", "FlaxLogitsProcessorList", "FlaxTemperatureLogitsWarper",
            "FlaxTopKLogitsWarper", "FlaxTopPLogitsWarper", "FlaxMinPLogitsWarper",
            "FlaxRepetitionPenaltyLogitsProcessor", "FlaxNoRepeatNGramLogitsProcessor",
            "FlaxMinLengthLogitsProcessor", "FlaxMinNewTokensLengthLogitsProcessor",
            "FlaxForcedBOSTokenLogitsProcessor", "FlaxForcedEOSTokenLogitsProcessor",
            "FlaxSuppressTokensLogitsProcessor", "FlaxSuppressTokensAtBeginLogitsProcessor",
        ],
        "flaxformers.generation.logits_process",
    ),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flaxformers.generation' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)

"""Generation: GenerationConfig, logits processors, the compiled loop, beam search and streaming.

Imports are lazy: `flaxformers.generation.config` (shared with the PyTorch twin) must not pull in jax.
"""

from __future__ import annotations

from flaxformers._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "GenerationConfig": "flaxformers.generation.config",
    **dict.fromkeys(["GenerationMixin", "FlaxGenerationMixin", "FlaxGreedySearchOutput", "FlaxSampleOutput", "FlaxBeamSearchOutput"],
                    "flaxformers.generation.mixin"),
    **dict.fromkeys(["BaseStreamer", "TextStreamer", "TextIteratorStreamer", "TokenIteratorStreamer"],
                    "flaxformers.generation.streamers"),
    **dict.fromkeys(
        [
            "FlaxLogitsProcessor", "FlaxLogitsWarper", "FlaxLogitsProcessorList", "FlaxTemperatureLogitsWarper",
            "FlaxTopKLogitsWarper", "FlaxTopPLogitsWarper", "FlaxMinPLogitsWarper",
            "FlaxRepetitionPenaltyLogitsProcessor", "FlaxNoRepeatNGramLogitsProcessor",
            "FlaxMinLengthLogitsProcessor", "FlaxMinNewTokensLengthLogitsProcessor",
            "FlaxForcedBOSTokenLogitsProcessor", "FlaxForcedEOSTokenLogitsProcessor", "FlaxForceTokensLogitsProcessor",
            "FlaxSuppressTokensLogitsProcessor", "FlaxSuppressTokensAtBeginLogitsProcessor",
        ],
        "flaxformers.generation.logits_process",
    ),
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

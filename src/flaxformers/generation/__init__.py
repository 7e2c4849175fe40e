"""Generation: GenerationConfig, logits processors, the compiled loop, beam search and streaming."""

from flaxformers.generation.config import GenerationConfig
from flaxformers.generation.logits_process import (
    FlaxForcedBOSTokenLogitsProcessor,
    FlaxForcedEOSTokenLogitsProcessor,
    FlaxLogitsProcessor,
    FlaxLogitsProcessorList,
    FlaxLogitsWarper,
    FlaxMinLengthLogitsProcessor,
    FlaxMinNewTokensLengthLogitsProcessor,
    FlaxMinPLogitsWarper,
    FlaxNoRepeatNGramLogitsProcessor,
    FlaxRepetitionPenaltyLogitsProcessor,
    FlaxSuppressTokensAtBeginLogitsProcessor,
    FlaxSuppressTokensLogitsProcessor,
    FlaxTemperatureLogitsWarper,
    FlaxTopKLogitsWarper,
    FlaxTopPLogitsWarper,
)
from flaxformers.generation.mixin import (
    FlaxBeamSearchOutput,
    FlaxGreedySearchOutput,
    FlaxSampleOutput,
    GenerationMixin,
)
from flaxformers.generation.streamers import (
    BaseStreamer,
    TextIteratorStreamer,
    TextStreamer,
    TokenIteratorStreamer,
)

__all__ = [
    "GenerationConfig",
    "GenerationMixin",
    "FlaxGreedySearchOutput",
    "FlaxSampleOutput",
    "FlaxBeamSearchOutput",
    "BaseStreamer",
    "TextStreamer",
    "TextIteratorStreamer",
    "TokenIteratorStreamer",
    "FlaxLogitsProcessor",
    "FlaxLogitsWarper",
    "FlaxLogitsProcessorList",
    "FlaxTemperatureLogitsWarper",
    "FlaxTopKLogitsWarper",
    "FlaxTopPLogitsWarper",
    "FlaxMinPLogitsWarper",
    "FlaxRepetitionPenaltyLogitsProcessor",
    "FlaxNoRepeatNGramLogitsProcessor",
    "FlaxMinLengthLogitsProcessor",
    "FlaxMinNewTokensLengthLogitsProcessor",
    "FlaxForcedBOSTokenLogitsProcessor",
    "FlaxForcedEOSTokenLogitsProcessor",
    "FlaxSuppressTokensLogitsProcessor",
    "FlaxSuppressTokensAtBeginLogitsProcessor",
]

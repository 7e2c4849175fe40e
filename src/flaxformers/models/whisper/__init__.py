"""Whisper (speech recognition and translation): a convolutional audio encoder and the BART-like
pre-norm decoder; its feature extractor, tokenizer and long-form generation. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bart import SEQ2SEQ_PARTITION_RULES
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxWhisperModel",
    "speech-seq2seq": "FlaxWhisperForConditionalGeneration",
    "audio-classification": "FlaxWhisperForAudioClassification",
}

FAMILY = Family(
    name="whisper",
    model_types={"whisper": ModelType("WhisperConfig", _HEADS)},
    exports={
        "configuration": ("WhisperConfig",),
        "modeling": (*_HEADS.values(), "FlaxWhisperPreTrainedModel"),
        "feature_extraction": ("WhisperFeatureExtractor",),
        "tokenization": ("WhisperTokenizer",),
        "generation": ("FlaxWhisperTimeStampLogitsProcessor",),
    },
    partition_rules=(*SEQ2SEQ_PARTITION_RULES, (r"conv[12]/kernel$", (None, None, "tensor"))),
    tokenizer=TokenizerHint(("vocab.json", "merges.txt"), "flaxformers.models.whisper.tokenization:whisper_tokenizer",
                            classes=("WhisperTokenizer", "WhisperTokenizerFast"),
                            adapt="flaxformers.models.whisper.tokenization:adapt_whisper_tokenizer", by_files=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""The speech encoder-decoder: a raw-audio encoder and a text decoder of any family here (Wav2Vec2 into
BERT or GPT-2). The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType

FAMILY = Family(
    name="speech_encoder_decoder",
    model_types={
        "speech-encoder-decoder": ModelType(
            "SpeechEncoderDecoderConfig",
            {"base": "FlaxSpeechEncoderDecoderModel", "speech-seq2seq": "FlaxSpeechEncoderDecoderModel"}),
    },
    exports={"configuration": ("SpeechEncoderDecoderConfig",), "modeling": ("FlaxSpeechEncoderDecoderModel",)},
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

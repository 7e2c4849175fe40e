"""SpeechEncoderDecoderConfig: a raw-audio encoder (Wav2Vec2) and any decoder with cross-attention of this
library."""

from __future__ import annotations

from flaxformers.configuration_utils import CompositeEncoderDecoderConfig


class SpeechEncoderDecoderConfig(CompositeEncoderDecoderConfig):
    model_type = "speech-encoder-decoder"


__all__ = ["SpeechEncoderDecoderConfig"]

"""EncoderDecoderConfig: any text encoder and any decoder with cross-attention of this library."""

from __future__ import annotations

from flaxformers.configuration_utils import CompositeEncoderDecoderConfig


class EncoderDecoderConfig(CompositeEncoderDecoderConfig):
    model_type = "encoder-decoder"


__all__ = ["EncoderDecoderConfig"]

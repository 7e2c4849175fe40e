"""VisionEncoderDecoderConfig: any image encoder and any decoder with cross-attention of this library."""

from __future__ import annotations

from flaxformers.configuration_utils import CompositeEncoderDecoderConfig


class VisionEncoderDecoderConfig(CompositeEncoderDecoderConfig):
    model_type = "vision-encoder-decoder"


__all__ = ["VisionEncoderDecoderConfig"]

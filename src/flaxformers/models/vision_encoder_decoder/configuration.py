"""VisionEncoderDecoderConfig: any image encoder and any decoder with cross-attention of this library."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig, nested_config


class VisionEncoderDecoderConfig(PretrainedConfig):
    model_type = "vision-encoder-decoder"

    def __init__(self, **kwargs: Any):
        if "encoder" not in kwargs or "decoder" not in kwargs:
            raise ValueError("VisionEncoderDecoderConfig needs encoder= and decoder= configs (or their dicts).")
        self.encoder = nested_config(kwargs.pop("encoder"), "encoder")
        self.decoder = nested_config(kwargs.pop("decoder"), "decoder")
        kwargs.setdefault("is_encoder_decoder", True)
        super().__init__(**kwargs)

    @classmethod
    def from_encoder_decoder_configs(cls, encoder_config: PretrainedConfig, decoder_config: PretrainedConfig,
                                     **kwargs: Any) -> VisionEncoderDecoderConfig:
        """The decoder set up as transformers does: causal, with cross-attention over the encoder."""
        decoder = decoder_config.to_dict()
        decoder.update(is_decoder=True, add_cross_attention=True)
        return cls(encoder=encoder_config.to_dict(), decoder=decoder, **kwargs)


__all__ = ["VisionEncoderDecoderConfig"]

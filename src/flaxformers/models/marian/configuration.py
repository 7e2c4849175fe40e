"""MarianConfig: BART's keys with Marian's defaults; post-norm layers, sinusoidal positions, no embedding norm."""

from __future__ import annotations

from typing import Any

from flaxformers.models.bart.configuration import SHARED_DEFAULTS, Architecture, BartConfig


class MarianConfig(BartConfig):
    model_type = "marian"
    architecture = Architecture(layernorm_embedding=False, sinusoidal_positions=True)
    defaults = {**SHARED_DEFAULTS, "vocab_size": 58101, "decoder_vocab_size": None, "decoder_start_token_id": 58100,
                "pad_token_id": 58100, "eos_token_id": 0, "forced_eos_token_id": 0,
                "share_encoder_decoder_embeddings": True}

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.decoder_vocab_size is None:
            self.decoder_vocab_size = self.vocab_size
        self._check(self.share_encoder_decoder_embeddings and self.decoder_vocab_size == self.vocab_size,
                    "separate source and target embeddings (share_encoder_decoder_embeddings=False) are not supported "
                    "(transformers 4.x Flax had one shared embedding).")

"""LongT5Config: T5's keys plus the encoder's attention (`local` or `transient-global`), its radius and
the global block size."""

from __future__ import annotations

from typing import Any

from flaxformers.models.t5.configuration import T5Config

ENCODER_ATTENTION_TYPES = ("local", "transient-global")


class LongT5Config(T5Config):
    model_type = "longt5"
    defaults = {**T5Config.defaults, "local_radius": 127, "global_block_size": 16, "encoder_attention_type": "local"}

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._check(self.encoder_attention_type in ENCODER_ATTENTION_TYPES,
                    f"encoder_attention_type={self.encoder_attention_type!r} is not one of {ENCODER_ATTENTION_TYPES}.")
        self._check(self.local_radius >= 0 and self.global_block_size > 0,
                    "local_radius must be >= 0 and global_block_size > 0.")

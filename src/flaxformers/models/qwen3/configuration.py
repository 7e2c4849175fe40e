"""The Qwen3 config: Qwen2's, with RMSNorm on each query and key head, `attention_bias` for all four
projections, and a free `head_dim` (128 by default)."""

from __future__ import annotations

from typing import Any

from flaxformers.models.qwen2 import Qwen2Config


class Qwen3Config(Qwen2Config):
    model_type = "qwen3"
    qk_norm = True
    qkv_bias = o_bias = property(lambda self: self.attention_bias)

    def __init__(self, head_dim: int | None = 128, **kwargs: Any):
        super().__init__(head_dim=head_dim, **kwargs)


__all__ = ["Qwen3Config"]

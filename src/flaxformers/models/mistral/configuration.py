"""The Mistral config: Llama's, with a sliding window on every layer and no projection biases."""

from __future__ import annotations

from typing import Any

from flaxformers.models.llama import LlamaConfig
from flaxformers.nn.rope_config import FULL, SLIDING


class MistralConfig(LlamaConfig):
    model_type = "mistral"

    def __init__(
        self,
        vocab_size: int = 32000,
        hidden_size: int = 4096,
        intermediate_size: int = 14336,
        num_hidden_layers: int = 32,
        num_attention_heads: int = 32,
        num_key_value_heads: int | None = 8,
        max_position_embeddings: int = 4096 * 32,
        sliding_window: int | None = 4096,
        **kwargs: Any,
    ):
        self.sliding_window = sliding_window
        # transformers' Mistral has no projection biases, whatever a config file says.
        kwargs.update(attention_bias=False, mlp_bias=False)
        super().__init__(
            vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
            num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
            num_key_value_heads=num_key_value_heads, max_position_embeddings=max_position_embeddings, **kwargs,
        )

    @property
    def layer_types(self) -> list[str]:
        return [FULL if self.sliding_window is None else SLIDING] * self.num_hidden_layers

    def window_for(self, layer_type: str) -> int | None:
        return self.sliding_window if layer_type == SLIDING else None


__all__ = ["MistralConfig"]

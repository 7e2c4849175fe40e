"""The Qwen2 config: Llama's, with q/k/v biases and sliding-window layers from `max_window_layers` on."""

from __future__ import annotations

from typing import Any

from flaxformers.models.llama import LlamaConfig
from flaxformers.nn.rope_config import FULL, SLIDING


class Qwen2Config(LlamaConfig):
    model_type = "qwen2"
    layer_types: list[str] | None = None  # a config key here (transformers writes it out)
    qkv_bias = True  # q/k/v projections have biases, the output projection none
    o_bias = False

    def __init__(
        self,
        vocab_size: int = 151936,
        hidden_size: int = 4096,
        intermediate_size: int = 22016,
        num_hidden_layers: int = 32,
        num_attention_heads: int = 32,
        num_key_value_heads: int | None = 32,
        max_position_embeddings: int = 32768,
        bos_token_id: int | None = None,
        eos_token_id: int | list[int] | None = None,
        use_sliding_window: bool = False,
        sliding_window: int | None = 4096,
        max_window_layers: int = 28,
        layer_types: list[str] | None = None,
        **kwargs: Any,
    ):
        self.use_sliding_window = use_sliding_window
        # As transformers: the window exists only when it is switched on, and the layers from
        # `max_window_layers` on slide.
        self.sliding_window = sliding_window if use_sliding_window else None
        self.max_window_layers = max_window_layers
        if layer_types is None:
            layer_types = [SLIDING if self.sliding_window is not None and i >= max_window_layers else FULL
                           for i in range(num_hidden_layers)]
        self.layer_types = list(layer_types)
        super().__init__(
            vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
            num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
            num_key_value_heads=num_key_value_heads, max_position_embeddings=max_position_embeddings,
            bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs,
        )

    def window_for(self, layer_type: str) -> int | None:
        return self.sliding_window if layer_type == SLIDING else None


__all__ = ["Qwen2Config"]

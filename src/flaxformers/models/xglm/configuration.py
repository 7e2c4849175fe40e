"""XGLMConfig: the keys of transformers' XGLM `config.json`."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class XGLMConfig(PretrainedConfig):
    model_type = "xglm"
    attribute_map = {"num_attention_heads": "attention_heads", "hidden_size": "d_model",
                     "num_hidden_layers": "num_layers"}

    def __init__(
        self,
        vocab_size: int = 256008,
        max_position_embeddings: int = 2048,
        d_model: int = 1024,
        ffn_dim: int = 4096,
        num_layers: int = 24,
        attention_heads: int = 16,
        activation_function: str = "gelu",
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        layerdrop: float = 0.0,
        init_std: float = 0.02,
        scale_embedding: bool = True,
        use_cache: bool = True,
        decoder_start_token_id: int = 2,
        pad_token_id: int = 1,
        bos_token_id: int = 0,
        eos_token_id: int = 2,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.d_model = d_model
        self.ffn_dim = ffn_dim
        self.num_layers = num_layers
        self.attention_heads = attention_heads
        self.activation_function = activation_function
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation_dropout = activation_dropout
        self.layerdrop = layerdrop  # training-time layer dropping: kept for round trips, not applied
        self.init_std = init_std
        self.scale_embedding = scale_embedding
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         decoder_start_token_id=decoder_start_token_id, use_cache=use_cache, **kwargs)
        self._check(min(vocab_size, max_position_embeddings, d_model, ffn_dim, num_layers, attention_heads) > 0,
                    "vocab_size, max_position_embeddings, d_model, ffn_dim, num_layers and attention_heads "
                    "must be positive.")
        self._check(d_model % attention_heads == 0,
                    f"d_model={d_model} must be divisible by attention_heads={attention_heads}.")
        self._check(d_model >= 4, f"d_model={d_model}: the sinusoidal positions need at least 2 frequencies.")
        self._check_activation("activation_function", activation_function)

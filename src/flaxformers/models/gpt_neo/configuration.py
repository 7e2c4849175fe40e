"""GPTNeoConfig: the keys of transformers' GPT-Neo `config.json`."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig

ATTENTION_KINDS = ("global", "local")


class GPTNeoConfig(PretrainedConfig):
    model_type = "gpt_neo"
    attribute_map = {"num_attention_heads": "num_heads", "num_hidden_layers": "num_layers"}

    def __init__(
        self,
        vocab_size: int = 50257,
        max_position_embeddings: int = 2048,
        hidden_size: int = 2048,
        num_layers: int = 24,
        attention_types: list | None = None,
        num_heads: int = 16,
        intermediate_size: int | None = None,
        window_size: int = 256,
        activation_function: str = "gelu_new",
        resid_dropout: float = 0.0,
        embed_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        classifier_dropout: float = 0.1,
        layer_norm_epsilon: float = 1e-5,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        bos_token_id: int = 50256,
        eos_token_id: int = 50256,
        **kwargs: Any,
    ):
        kwargs.pop("attention_layers", None)  # derived from attention_types, as transformers does
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.attention_types = [[["global", "local"], 12]] if attention_types is None else attention_types
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.window_size = window_size
        self.activation_function = activation_function
        self.resid_dropout = resid_dropout
        self.embed_dropout = embed_dropout
        self.attention_dropout = attention_dropout
        self.classifier_dropout = classifier_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, use_cache=use_cache, **kwargs)
        self.attention_layers = [kind for kinds, repeat in self.attention_types for _ in range(repeat) for kind in kinds]
        self._validate()

    def _validate(self) -> None:
        self._check(min(self.vocab_size, self.max_position_embeddings, self.hidden_size, self.num_layers,
                        self.num_heads, self.window_size) > 0,
                    "vocab_size, max_position_embeddings, hidden_size, num_layers, num_heads and window_size "
                    "must be positive.")
        self._check(self.hidden_size % self.num_heads == 0,
                    f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}.")
        self._check(len(self.attention_layers) == self.num_layers,
                    f"attention_types={self.attention_types} expands to {len(self.attention_layers)} layers, but "
                    f"num_layers={self.num_layers}; each entry [[kinds...], n] adds n * len(kinds) layers.")
        unknown = sorted(set(self.attention_layers) - set(ATTENTION_KINDS))
        self._check(not unknown, f"attention_types holds {unknown}; each layer is one of {ATTENTION_KINDS}.")
        self._check_activation("activation_function", self.activation_function)

"""BertConfig: the keys of transformers' BERT `config.json`."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class BertConfig(PretrainedConfig):
    model_type = "bert"

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int = 0,
        position_embedding_type: str = "absolute",
        use_cache: bool = True,
        classifier_dropout: float | None = None,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.position_embedding_type = position_embedding_type
        self.classifier_dropout = classifier_dropout
        super().__init__(pad_token_id=pad_token_id, use_cache=use_cache, **kwargs)
        self._validate()

    def _validate(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            self._check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                        f"{name}={value!r} must be a positive integer.")
        d, n = self.hidden_size, self.num_attention_heads
        self._check(d % n == 0, f"hidden_size={d} must be a multiple of num_attention_heads={n}, since "
                                "head_dim = hidden_size / num_attention_heads.")
        self._check_activation("hidden_act", self.hidden_act)
        # transformers 4.x Flax encoders implement absolute positions only (relative_key* are PyTorch-only).
        self._check(self.position_embedding_type == "absolute",
                    f"position_embedding_type={self.position_embedding_type!r} is not supported: the Flax "
                    f"{self.model_type} model supports 'absolute' only.")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            self._check(0.0 <= value < 1.0, f"{name}={value!r} must be in [0, 1).")
        self._check(self.layer_norm_eps > 0, f"layer_norm_eps={self.layer_norm_eps!r} must be > 0.")

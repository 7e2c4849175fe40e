"""DistilBertConfig: the keys of transformers' DistilBERT `config.json` (`dim`, `n_layers`, `n_heads`, ...).

The BERT-style names (`hidden_size`, `hidden_dropout_prob`, ...) are aliases, so the shared layers read
either spelling; the LayerNorm epsilon is DistilBERT's fixed 1e-12.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flaxformers.configuration_utils import PretrainedConfig


class DistilBertConfig(PretrainedConfig):
    model_type = "distilbert"
    attribute_map: ClassVar[dict[str, str]] = {
        "hidden_size": "dim", "num_attention_heads": "n_heads", "num_hidden_layers": "n_layers",
        "intermediate_size": "hidden_dim", "hidden_dropout_prob": "dropout",
        "attention_probs_dropout_prob": "attention_dropout", "hidden_act": "activation",
    }
    layer_norm_eps: ClassVar[float] = 1e-12

    def __init__(self, vocab_size: int = 30522, max_position_embeddings: int = 512, sinusoidal_pos_embds: bool = False,
                 n_layers: int = 6, n_heads: int = 12, dim: int = 768, hidden_dim: int = 3072, dropout: float = 0.1,
                 attention_dropout: float = 0.1, activation: str = "gelu", initializer_range: float = 0.02,
                 qa_dropout: float = 0.1, seq_classif_dropout: float = 0.2, pad_token_id: int = 0, **kwargs: Any):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.sinusoidal_pos_embds = sinusoidal_pos_embds
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.initializer_range = initializer_range
        self.qa_dropout = qa_dropout
        self.seq_classif_dropout = seq_classif_dropout
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        for name in ("vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim", "hidden_dim"):
            value = getattr(self, name)
            self._check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                        f"{name}={value!r} must be a positive integer.")
        self._check(dim % n_heads == 0, f"dim={dim} must be a multiple of n_heads={n_heads}.")
        self._check_activation("activation", activation)
        for name in ("dropout", "attention_dropout", "qa_dropout", "seq_classif_dropout"):
            value = getattr(self, name)
            self._check(0.0 <= value < 1.0, f"{name}={value!r} must be in [0, 1).")

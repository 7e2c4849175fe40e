"""RoFormerConfig: BERT's keys plus `embedding_size` and `rotary_value`."""

from __future__ import annotations

from typing import Any

from flaxformers.models.bert.configuration import BertConfig


class RoFormerConfig(BertConfig):
    model_type = "roformer"

    def __init__(self, vocab_size: int = 50000, embedding_size: int | None = None, hidden_size: int = 768,
                 max_position_embeddings: int = 1536, rotary_value: bool = False, **kwargs: Any):
        self.embedding_size = hidden_size if embedding_size is None else embedding_size
        self.rotary_value = rotary_value
        super().__init__(vocab_size=vocab_size, hidden_size=hidden_size,
                         max_position_embeddings=max_position_embeddings, **kwargs)
        head_dim = self.hidden_size // self.num_attention_heads
        self._check(head_dim % 2 == 0, f"hidden_size / num_attention_heads = {head_dim} must be even: rotary "
                                       "positions turn pairs of features.")

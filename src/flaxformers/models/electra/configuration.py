"""ElectraConfig: BERT's keys plus `embedding_size` and the multiple-choice head's `summary_*` keys."""

from __future__ import annotations

from typing import Any

from flaxformers.models.bert.configuration import BertConfig


class ElectraConfig(BertConfig):
    model_type = "electra"

    def __init__(self, vocab_size: int = 30522, embedding_size: int = 128, hidden_size: int = 256,
                 num_attention_heads: int = 4, intermediate_size: int = 1024, summary_type: str = "first",
                 summary_use_proj: bool = True, summary_activation: str | None = "gelu",
                 summary_last_dropout: float = 0.1, **kwargs: Any):
        self.embedding_size = embedding_size
        self.summary_type = summary_type
        self.summary_use_proj = summary_use_proj
        self.summary_activation = summary_activation
        self.summary_last_dropout = summary_last_dropout
        super().__init__(vocab_size=vocab_size, hidden_size=hidden_size, num_attention_heads=num_attention_heads,
                         intermediate_size=intermediate_size, **kwargs)
        self._check(isinstance(embedding_size, int) and embedding_size > 0,
                    f"embedding_size={embedding_size!r} must be a positive integer.")
        self._check(summary_type == "first", f"summary_type={summary_type!r}: the Flax ELECTRA multiple-choice head "
                                             "summarises the first token only ('first').")

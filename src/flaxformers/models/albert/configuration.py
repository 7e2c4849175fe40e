"""AlbertConfig: BERT's keys plus factorised embeddings and shared layer groups."""

from __future__ import annotations

from typing import Any

from flaxformers.models.bert.configuration import BertConfig


class AlbertConfig(BertConfig):
    model_type = "albert"

    def __init__(self, vocab_size: int = 30000, embedding_size: int = 128, hidden_size: int = 4096,
                 num_hidden_layers: int = 12, num_hidden_groups: int = 1, num_attention_heads: int = 64,
                 intermediate_size: int = 16384, inner_group_num: int = 1, hidden_act: str = "gelu_new",
                 hidden_dropout_prob: float = 0.0, attention_probs_dropout_prob: float = 0.0,
                 classifier_dropout_prob: float | None = 0.1, pad_token_id: int = 0, bos_token_id: int = 2,
                 eos_token_id: int = 3, **kwargs: Any):
        self.embedding_size = embedding_size
        self.num_hidden_groups = num_hidden_groups
        self.inner_group_num = inner_group_num
        self.classifier_dropout_prob = classifier_dropout_prob
        super().__init__(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                         num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
                         hidden_act=hidden_act, hidden_dropout_prob=hidden_dropout_prob,
                         attention_probs_dropout_prob=attention_probs_dropout_prob, pad_token_id=pad_token_id,
                         bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
        for name in ("embedding_size", "num_hidden_groups", "inner_group_num"):
            value = getattr(self, name)
            self._check(isinstance(value, int) and value > 0, f"{name}={value!r} must be a positive integer.")
        self._check(num_hidden_groups <= num_hidden_layers,
                    f"num_hidden_groups={num_hidden_groups} must be at most num_hidden_layers={num_hidden_layers}.")

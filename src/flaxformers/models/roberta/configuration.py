"""RobertaConfig: BERT's keys with RoBERTa's vocabulary and special-token defaults (pad 1, bos 0, eos 2)."""

from __future__ import annotations

from typing import Any

from flaxformers.models.bert.configuration import BertConfig


class RobertaConfig(BertConfig):
    model_type = "roberta"

    def __init__(self, vocab_size: int = 50265, pad_token_id: int = 1, bos_token_id: int = 0, eos_token_id: int = 2,
                 **kwargs: Any):
        super().__init__(vocab_size=vocab_size, pad_token_id=pad_token_id, bos_token_id=bos_token_id,
                         eos_token_id=eos_token_id, **kwargs)

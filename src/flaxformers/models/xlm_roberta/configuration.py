"""XLMRobertaConfig: RoBERTa's keys (transformers' default vocabulary size is BERT's 30522)."""

from __future__ import annotations

from typing import Any

from flaxformers.models.roberta.configuration import RobertaConfig


class XLMRobertaConfig(RobertaConfig):
    model_type = "xlm-roberta"

    def __init__(self, vocab_size: int = 30522, **kwargs: Any):
        super().__init__(vocab_size=vocab_size, **kwargs)

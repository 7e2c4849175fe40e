"""DistilBERT's tokenizer: BERT's WordPiece from `vocab.txt`, without segment ids (the model has none)."""

from __future__ import annotations

import os
from typing import Any

from flaxformers.tokenizers import Tokenizer
from flaxformers.tokenizers.wordpiece import wordpiece_tokenizer


def distilbert_tokenizer(vocab_txt_path: str | os.PathLike, tokenizer_config: dict[str, Any] | None = None,
                         **kwargs: Any) -> Tokenizer:
    tokenizer = wordpiece_tokenizer(vocab_txt_path, tokenizer_config, **kwargs)
    tokenizer.uses_token_types = False
    return tokenizer


__all__ = ["distilbert_tokenizer"]

"""GPT-2's tokenizer from `vocab.json` + `merges.txt`: byte-level BPE with `<|endoftext|>` as bos/eos/unk."""

from __future__ import annotations

import os
from typing import Any

from tokenizers import AddedToken

from flaxformers.tokenizers import Tokenizer, special_tokens_from_config
from flaxformers.tokenizers.bpe import byte_level_bpe

ENDOFTEXT = "<|endoftext|>"


def gpt2_tokenizer(vocab_json: str | os.PathLike, merges_txt: str | os.PathLike,
                   tokenizer_config: dict[str, Any] | None = None, **kwargs: Any) -> Tokenizer:
    """Options come from `tokenizer_config.json` (special tokens, `model_max_length`); keywords override them."""
    backend = byte_level_bpe(vocab_json, merges_txt)
    backend.add_special_tokens([AddedToken(ENDOFTEXT, special=True)])
    specials = {"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT, "unk_token": ENDOFTEXT, "model_max_length": 1024}
    return Tokenizer(backend, **{**specials, **special_tokens_from_config(tokenizer_config or {}), **kwargs})


__all__ = ["gpt2_tokenizer"]

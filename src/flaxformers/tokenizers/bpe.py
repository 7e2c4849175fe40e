"""Byte-level BPE from the legacy `vocab.json` + `merges.txt` pair, on the `tokenizers` library."""

from __future__ import annotations

import os

import tokenizers
from tokenizers import decoders, models, pre_tokenizers


def byte_level_bpe(vocab_json: str | os.PathLike, merges_txt: str | os.PathLike,
                   add_prefix_space: bool = False) -> tokenizers.Tokenizer:
    """The backend of a byte-level BPE vocabulary, with the ByteLevel pre-tokenizer and decoder."""
    backend = tokenizers.Tokenizer(models.BPE.from_file(os.fspath(vocab_json), os.fspath(merges_txt)))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    return backend


__all__ = ["byte_level_bpe"]

"""Wav2Vec2CTCTokenizer: characters to ids (spaces as the word delimiter `|`), and CTC decoding of
per-frame ids: repeats merged, the blank (`<pad>`) dropped, delimiters back to spaces."""

from __future__ import annotations

import json
import os
from itertools import groupby
from typing import Any

import numpy as np


class Wav2Vec2CTCTokenizer:
    def __init__(self, vocab: dict[str, int], bos_token: str = "<s>", eos_token: str = "</s>", unk_token: str = "<unk>",
                 pad_token: str = "<pad>", word_delimiter_token: str = "|", replace_word_delimiter_char: str = " ",
                 do_lower_case: bool = False, **kwargs: Any):
        self.vocab, self.ids = dict(vocab), {i: t for t, i in vocab.items()}
        self.bos_token, self.eos_token, self.unk_token, self.pad_token = bos_token, eos_token, unk_token, pad_token
        self.word_delimiter_token, self.replace_word_delimiter_char = word_delimiter_token, replace_word_delimiter_char
        self.do_lower_case = do_lower_case

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> Wav2Vec2CTCTokenizer:
        config: dict[str, Any] = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            file = os.path.join(path, name)
            if os.path.isfile(file):
                with open(file, encoding="utf-8") as f:
                    config.update(json.load(f))
        return ctc_tokenizer(os.path.join(path, "vocab.json"), config, **kwargs)

    @property
    def pad_token_id(self) -> int:
        return self.vocab[self.pad_token]

    @property
    def special_tokens(self) -> set[str]:
        return {self.bos_token, self.eos_token, self.unk_token, self.pad_token}

    def tokenize(self, text: str) -> list[str]:
        text = text.upper() if self.do_lower_case else text
        return list(text.replace(" ", self.word_delimiter_token))

    def encode(self, text: str) -> list[int]:
        unk = self.vocab.get(self.unk_token)
        return [self.vocab.get(t, unk) for t in self.tokenize(text)]

    def __call__(self, text: str | list[str]) -> dict[str, Any]:
        if isinstance(text, str):
            return {"input_ids": self.encode(text)}
        return {"input_ids": [self.encode(t) for t in text]}

    def decode(self, ids: Any, skip_special_tokens: bool = False, group_tokens: bool = True) -> str:
        """CTC text of per-frame ids [T]: repeats merged (`group_tokens`), blanks dropped, `|` as spaces."""
        tokens = [self.ids.get(int(i), self.unk_token) for i in np.asarray(ids).reshape(-1)]
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in self.special_tokens or t == self.word_delimiter_token]
        chars = [t for t, _ in groupby(tokens)] if group_tokens else tokens
        chars = [self.replace_word_delimiter_char if c == self.word_delimiter_token else c
                 for c in chars if c != self.pad_token]
        return "".join(chars).strip()

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, group_tokens: bool = True) -> list[str]:
        return [self.decode(s, skip_special_tokens, group_tokens) for s in np.asarray(sequences)]




def ctc_tokenizer(vocab_json: str | os.PathLike, tokenizer_config: dict[str, Any] | None = None,
                  **kwargs: Any) -> Wav2Vec2CTCTokenizer:
    """AutoTokenizer's builder: `vocab.json` and `tokenizer_config.json`'s special tokens."""
    with open(vocab_json, encoding="utf-8") as f:
        vocab = json.load(f)
    config = {k: v["content"] if isinstance(v, dict) and "content" in v else v
              for k, v in (tokenizer_config or {}).items()}
    return Wav2Vec2CTCTokenizer(vocab, **{**config, **kwargs})


__all__ = ["Wav2Vec2CTCTokenizer", "ctc_tokenizer"]

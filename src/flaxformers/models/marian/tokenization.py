"""Marian's tokenizer from `source.spm`, `target.spm` and `vocab.json` (no tokenizer.json).

As transformers' MarianTokenizer: sources are cut by the source SentencePiece model and targets
(`text_target=`) by the target one; each piece takes its id from `vocab.json` (or, with
`separate_vocabs`, targets from `target_vocab.json`), pieces not there become `<unk>`; a language code
`>>xx<<` opening a text is one token; `</s>` ends every sequence. Decoding joins pieces with the source
model (the target one with separate vocabularies) and keeps special tokens as they are, each followed by
a space.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import tokenizers
from tokenizers import processors

from flaxformers.tokenizers import special_tokens_from_config
from flaxformers.tokenizers.sentencepiece import (
    WORD_MARK,
    SentencePieceTokenizer,
    processor,
    word_level_backend,
)

MARIAN_SPECIAL_TOKENS = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}


class MarianTokenizer(SentencePieceTokenizer):
    tokenizer_class = "MarianTokenizer"

    def __init__(self, backend: tokenizers.Tokenizer, target_backend: tokenizers.Tokenizer | None, source_spm: Any,
                 target_spm: Any, files: dict[str, str], **kwargs: Any):
        super().__init__(backend, source_spm, files, **kwargs)
        self.source_backend, self.target_backend = backend, target_backend
        self.source_spm, self.target_spm = source_spm, target_spm

    @property
    def separate_vocabs(self) -> bool:
        return self.target_backend is not None

    @contextlib.contextmanager
    def target_mode(self) -> Iterator[None]:
        self.segmenter, self.backend = self.target_spm, self.target_backend or self.source_backend
        try:
            yield
        finally:
            self.segmenter, self.backend = self.source_spm, self.source_backend

    def _segment(self, text: str) -> list[str]:
        code = []
        end = text.find("<<") if text.startswith(">>") else -1
        if end != -1:  # a language code opens the text: one token
            code, text = [text[:end + 2]], text[end + 2:]
        return code + super()._segment(text)

    def _decode_backend(self) -> tokenizers.Tokenizer:
        return self.target_backend or self.source_backend

    def _save_vocabulary(self, directory: str | os.PathLike) -> dict[str, Any]:
        return {**super()._save_vocabulary(directory), "separate_vocabs": self.separate_vocabs}

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        spm = self.target_spm if self.separate_vocabs else self.source_spm
        specials = set(self.all_special_tokens)
        out, run = "", []
        for token in tokens:
            if token in specials:
                out += spm.decode_pieces(run) + token + " "
                run = []
            else:
                run.append(token)
        return (out + spm.decode_pieces(run)).replace(WORD_MARK, " ").strip()


def marian_tokenizer(source_spm: str | os.PathLike, target_spm: str | os.PathLike, vocab_json: str | os.PathLike,
                     target_vocab_json: str | os.PathLike | None, tokenizer_config: dict[str, Any] | None = None,
                     **kwargs: Any) -> MarianTokenizer:
    """A MarianTokenizer; `separate_vocabs` (tokenizer_config.json or keyword) reads `target_vocab.json` too."""
    config = dict(tokenizer_config or {})
    separate = kwargs.pop("separate_vocabs", config.get("separate_vocabs", False))
    options = {**MARIAN_SPECIAL_TOKENS, **special_tokens_from_config(config), **kwargs}
    options.setdefault("model_max_length", 512)
    eos, unk = options["eos_token"], options["unk_token"]
    files = {"source.spm": os.fspath(source_spm), "target.spm": os.fspath(target_spm), "vocab.json": os.fspath(vocab_json)}
    if separate:
        if target_vocab_json is None:
            raise ValueError("separate_vocabs=True needs target_vocab.json beside vocab.json; add it, or pass "
                             "separate_vocabs=False.")
        files["target_vocab.json"] = os.fspath(target_vocab_json)
    backends, source_vocab = [], None
    for name in ("vocab.json", "target_vocab.json") if separate else ("vocab.json",):
        with open(files[name], encoding="utf-8") as f:
            vocab = json.load(f)
        if unk not in vocab or eos not in vocab:
            raise ValueError(f"{files[name]} lacks unk_token={unk!r} or eos_token={eos!r}; pass the tokens it uses "
                             "(unk_token=, eos_token=).")
        if source_vocab is None:
            source_vocab = vocab
        else:  # as transformers: targets end and pad with the source vocabulary's </s> and <pad> ids
            vocab = {**vocab, **{options[k]: source_vocab[options[k]] for k in ("eos_token", "pad_token")
                                 if options[k] in source_vocab}}
        backend = word_level_backend(vocab, unk, [options[k] for k in MARIAN_SPECIAL_TOKENS])
        backend.post_processor = processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A $B {eos}",
                                                               special_tokens=[(eos, vocab[eos])])
        backends.append(backend)
    return MarianTokenizer(backends[0], backends[1] if separate else None, processor(source_spm),
                           processor(target_spm), files, **options)


__all__ = ["MarianTokenizer", "marian_tokenizer"]

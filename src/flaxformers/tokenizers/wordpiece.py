"""A WordPiece tokenizer from `vocab.txt`, built on the `tokenizers` library.

The pipeline is transformers' `BertTokenizerFast`, which the WordPiece encoders share: BertNormalizer
(clean text, CJK spacing, optional lowercasing and accent stripping), BertPreTokenizer, WordPiece with
`##` continuations, and `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` with segment ids 0/0/1. A `tokenizer.json` of the same
pipeline loads through `Tokenizer.from_file` and gives the same ids.
"""

from __future__ import annotations

import os
from typing import Any

import tokenizers
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors

from flaxformers.tokenizers import Tokenizer, special_tokens_from_config

WORDPIECE_SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}


def wordpiece_tokenizer(vocab_txt_path: str | os.PathLike, tokenizer_config_dict: dict[str, Any] | None = None,
                        **kwargs: Any) -> Tokenizer:
    """A WordPiece `Tokenizer` that returns `token_type_ids`.

    Options come from `tokenizer_config.json` (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`,
    the special tokens, `model_max_length`) and keyword arguments override them, e.g.
    `do_lower_case=False` for a cased vocabulary.
    """
    config = dict(tokenizer_config_dict or {})
    do_lower_case = kwargs.pop("do_lower_case", config.get("do_lower_case", True))
    strip_accents = kwargs.pop("strip_accents", config.get("strip_accents"))
    chinese_chars = kwargs.pop("tokenize_chinese_chars", config.get("tokenize_chinese_chars", True))
    options = {**WORDPIECE_SPECIAL_TOKENS, **special_tokens_from_config(config), **kwargs}

    vocab = models.WordPiece.read_file(os.fspath(vocab_txt_path))
    unk, cls, sep = options["unk_token"], options["cls_token"], options["sep_token"]
    for role, token in (("unk_token", unk), ("cls_token", cls), ("sep_token", sep)):
        if token not in vocab:
            raise ValueError(f"{role}={token!r} is not in {os.fspath(vocab_txt_path)}; pass {role}= with a token "
                             "of this vocabulary.")
    backend = tokenizers.Tokenizer(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=chinese_chars, strip_accents=strip_accents, lowercase=do_lower_case
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    backend.decoder = decoders.WordPiece(prefix="##")
    specials = [options[k] for k in WORDPIECE_SPECIAL_TOKENS if options.get(k) in vocab]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tokenizer = Tokenizer(backend, **options)
    tokenizer.uses_token_types = True
    return tokenizer


__all__ = ["wordpiece_tokenizer", "WORDPIECE_SPECIAL_TOKENS"]

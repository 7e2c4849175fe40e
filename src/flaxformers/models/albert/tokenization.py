"""ALBERT's tokenizer from `spiece.model` (a SentencePiece Unigram model).

As transformers' AlbertTokenizerFast: `` and '' become ", accents are stripped unless `keep_accents`,
lowercasing with `do_lower_case` (default True), then the model's own normalization; `[CLS] A [SEP]` and
`[CLS] A [SEP] B [SEP]`. Like transformers 5's, it returns no `token_type_ids` (the model then reads
segment 0 everywhere).
"""

from __future__ import annotations

import os
from typing import Any

from tokenizers import AddedToken, normalizers, processors

from flaxformers.tokenizers import Tokenizer, special_tokens_from_config
from flaxformers.tokenizers.sentencepiece import read_model, unigram_backend

ALBERT_SPECIAL_TOKENS = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>", "sep_token": "[SEP]",
                         "pad_token": "<pad>", "cls_token": "[CLS]", "mask_token": "[MASK]"}


def albert_tokenizer(model_file: str | os.PathLike, tokenizer_config: dict[str, Any] | None = None,
                     **kwargs: Any) -> Tokenizer:
    config = dict(tokenizer_config or {})
    do_lower_case = kwargs.pop("do_lower_case", config.get("do_lower_case", True))
    keep_accents = kwargs.pop("keep_accents", config.get("keep_accents", False))
    add_prefix_space = kwargs.pop("add_prefix_space", config.get("add_prefix_space", True))
    options = {**ALBERT_SPECIAL_TOKENS, **special_tokens_from_config(config), **kwargs}
    steps = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    if not keep_accents:
        steps += [normalizers.NFKD(), normalizers.StripAccents()]
    if do_lower_case:
        steps.append(normalizers.Lowercase())
    backend = unigram_backend(read_model(model_file), extra_normalizers=steps, add_prefix_space=add_prefix_space)
    return sentence_pair_tokenizer(backend, options)


def sentence_pair_tokenizer(backend: Any, options: dict[str, Any]) -> Tokenizer:
    """Special tokens, and `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` (ALBERT, BigBird)."""
    cls, sep = options["cls_token"], options["sep_token"]
    specials = [options[k] for k in ALBERT_SPECIAL_TOKENS if backend.token_to_id(options[k]) is not None]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in dict.fromkeys(specials)])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
    )
    return Tokenizer(backend, **options)


__all__ = ["albert_tokenizer", "sentence_pair_tokenizer", "ALBERT_SPECIAL_TOKENS"]

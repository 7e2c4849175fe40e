"""BigBird's tokenizer from `spiece.model` (a SentencePiece Unigram model).

As transformers' BigBirdTokenizerFast: the model's pieces, runs of spaces become `▁` and the text is split
at `▁` (Metaspace), `[MASK]` swallows the space before it, `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`
(no `token_type_ids`, as transformers 5's).
"""

from __future__ import annotations

import os
from typing import Any

import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers

from flaxformers.models.albert.tokenization import sentence_pair_tokenizer
from flaxformers.tokenizers import Tokenizer, special_tokens_from_config
from flaxformers.tokenizers.sentencepiece import pieces, read_model

BIG_BIRD_SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                           "sep_token": "[SEP]", "mask_token": "[MASK]", "cls_token": "[CLS]"}


def big_bird_tokenizer(model_file: str | os.PathLike, tokenizer_config: dict[str, Any] | None = None,
                       **kwargs: Any) -> Tokenizer:
    config = dict(tokenizer_config or {})
    add_prefix_space = kwargs.pop("add_prefix_space", config.get("add_prefix_space", True))
    options = {**BIG_BIRD_SPECIAL_TOKENS, **special_tokens_from_config(config), **kwargs}
    vocab = pieces(read_model(model_file))
    unk = (options["unk_token"], 0.0)
    backend = tokenizers.Tokenizer(models.Unigram(vocab, unk_id=vocab.index(unk) if unk in vocab else 100,
                                                  byte_fallback=False))
    backend.normalizer = normalizers.Replace(Regex(r" {2,}"), "▁")
    scheme = "always" if add_prefix_space else "never"
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=True)
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme, split=True)
    backend.add_special_tokens([AddedToken(options["mask_token"], lstrip=True, special=True, normalized=False)])
    return sentence_pair_tokenizer(backend, options)


__all__ = ["big_bird_tokenizer"]

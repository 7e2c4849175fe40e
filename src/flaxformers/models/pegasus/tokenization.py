"""Pegasus' tokenizer from `spiece.model` (a SentencePiece Unigram model), for checkpoints without tokenizer.json.

As transformers 5's PegasusTokenizer converts it: `<pad>` 0, `</s>` 1, `<mask_1>` (the sentence mask) 2,
`<mask_2>` (the token mask) 3, `<unk_2>` ... `<unk_{offset-1}>`, then the model's pieces from its third on,
so piece i has id i + `offset` (103); the model's normalization with runs of spaces made one, the `▁`
Metaspace, and `A </s>` / `A B </s>`. The two masks keep Pegasus' own order (transformers 5 swaps them
when tokenizer_config.json names `mask_token`).
"""

from __future__ import annotations

import os
from typing import Any

import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors

from flaxformers.tokenizers import Tokenizer, special_tokens_from_config
from flaxformers.tokenizers.sentencepiece import WORD_MARK, pieces, read_model

PEGASUS_SPECIAL_TOKENS = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask_2>"}


def pegasus_tokenizer(model_file: str | os.PathLike, tokenizer_config: dict[str, Any] | None = None,
                      **kwargs: Any) -> Tokenizer:
    config = dict(tokenizer_config or {})
    offset = kwargs.pop("offset", config.get("offset", 103))
    mask_sent = kwargs.pop("mask_token_sent", config.get("mask_token_sent", "<mask_1>"))
    options = {**PEGASUS_SPECIAL_TOKENS, **special_tokens_from_config(config), **kwargs}
    pad, eos, unk, mask = (options[k] for k in PEGASUS_SPECIAL_TOKENS)
    model = read_model(model_file)
    masks = [t for t in dict.fromkeys((mask_sent, mask)) if t is not None]
    reserved = [f"<unk_{i}>" for i in range(2, offset)]
    vocab = [(pad, 0.0), (eos, 0.0), *((t, 0.0) for t in masks), *((t, -100.0) for t in reserved), *pieces(model)[2:]]
    backend = tokenizers.Tokenizer(models.Unigram(vocab, unk_id=[p for p, _ in vocab].index(unk), byte_fallback=False))
    spaces = normalizers.Replace(Regex(" {2,}"), " ")
    charsmap = model.normalizer_spec.precompiled_charsmap
    backend.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), spaces] if charsmap else [normalizers.Replace(Regex("\n"), " "), spaces])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_MARK, prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement=WORD_MARK, prepend_scheme="always", split=True)
    specials = [pad, eos, unk, *masks, *reserved]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials if t is not None])
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A $B {eos}", special_tokens=[(eos, backend.token_to_id(eos))])
    return Tokenizer(backend, **options)


__all__ = ["pegasus_tokenizer"]

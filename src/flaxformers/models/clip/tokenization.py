"""CLIP's tokenizer from `vocab.json` + `merges.txt`, as transformers' CLIPTokenizerFast builds it.

Byte-level BPE whose words end in `</w>`, after NFC, whitespace runs collapsed to one space and
lowercasing; `<|startoftext|>` ... `<|endoftext|>` around every text; `<|endoftext|>` also pads.
"""

from __future__ import annotations

import os
from typing import Any

import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors

from flaxformers.tokenizers import Tokenizer, special_tokens_from_config

STARTOFTEXT, ENDOFTEXT = "<|startoftext|>", "<|endoftext|>"
# CLIP's words: the special tokens, English contractions, letter runs, single digits, other symbol runs
WORDS = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def clip_tokenizer(vocab_json: str | os.PathLike, merges_txt: str | os.PathLike,
                   tokenizer_config: dict[str, Any] | None = None, **kwargs: Any) -> Tokenizer:
    """Options come from `tokenizer_config.json` (special tokens, `model_max_length`); keywords override them."""
    options = {"bos_token": STARTOFTEXT, "eos_token": ENDOFTEXT, "unk_token": ENDOFTEXT, "pad_token": ENDOFTEXT,
               "model_max_length": 77, **special_tokens_from_config(tokenizer_config or {}), **kwargs}
    bpe = models.BPE.from_file(os.fspath(vocab_json), os.fspath(merges_txt), continuing_subword_prefix="",
                               end_of_word_suffix="</w>", unk_token=options["unk_token"], fuse_unk=False)
    backend = tokenizers.Tokenizer(bpe)
    backend.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(WORDS), behavior="removed", invert=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False)])
    # `</w>` ends a word: a space in the text, none after the last word
    backend.decoder = decoders.Sequence(
        [decoders.ByteLevel(), decoders.Replace("</w>", " "), decoders.Fuse(), decoders.Strip(" ", 0, 1)])
    bos, eos = options["bos_token"], options["eos_token"]
    backend.add_special_tokens([AddedToken(t, special=True) for t in dict.fromkeys((bos, eos, options["pad_token"]))])
    backend.post_processor = processors.RobertaProcessing((eos, backend.token_to_id(eos)), (bos, backend.token_to_id(bos)),
                                                          trim_offsets=False, add_prefix_space=False)
    return Tokenizer(backend, **options)


__all__ = ["clip_tokenizer"]

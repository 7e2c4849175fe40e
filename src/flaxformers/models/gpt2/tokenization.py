"""GPT-2's tokenizer from `vocab.json` + `merges.txt`: byte-level BPE with `<|endoftext|>` as bos/eos/unk.
GPT-SW3's from its `spiece.model`, run by SentencePiece as transformers' GPTSw3Tokenizer does."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from tokenizers import AddedToken

from flaxformers.tokenizers import Tokenizer, special_tokens_from_config
from flaxformers.tokenizers.bpe import byte_level_bpe
from flaxformers.tokenizers.sentencepiece import SentencePieceTokenizer, processor, word_level_backend

ENDOFTEXT = "<|endoftext|>"


def gpt2_tokenizer(vocab_json: str | os.PathLike, merges_txt: str | os.PathLike,
                   tokenizer_config: dict[str, Any] | None = None, **kwargs: Any) -> Tokenizer:
    """Options come from `tokenizer_config.json` (special tokens, `model_max_length`); keywords override them."""
    backend = byte_level_bpe(vocab_json, merges_txt)
    backend.add_special_tokens([AddedToken(ENDOFTEXT, special=True)])
    specials = {"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT, "unk_token": ENDOFTEXT, "model_max_length": 1024}
    return Tokenizer(backend, **{**specials, **special_tokens_from_config(tokenizer_config or {}), **kwargs})


# GPT-SW3's text preparation (transformers' GPTSw3Tokenizer.preprocess_text, as when its model was trained):
# drop non-printing characters, make the other whitespace characters spaces, then NFC.
_NON_PRINTING = re.compile("[" + "".join(map(chr, [*range(0, 9), *range(11, 32), *range(127, 160), 160, 173, 8203])) + "]")
_WHITESPACES = re.compile("[\u2002\u2003\u2005\u2008\u2009\u200a\u202f\u3000\ufffc\u0084]")


class GPTSw3Tokenizer(SentencePieceTokenizer):
    """GPT-SW3's tokenizer: `spiece.model` run by SentencePiece on the prepared text; no tokens added."""

    tokenizer_class = "GPTSw3Tokenizer"

    def _segment(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFC", _WHITESPACES.sub(" ", _NON_PRINTING.sub("", text)))
        return super()._segment(text)

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        # as GPTSw3Tokenizer: a space before each first special token of a run, special tokens kept as they are
        specials = set(self.all_special_tokens)
        out, run, after_special = "", [], False
        for token in tokens:
            if token in specials:
                out += ("" if after_special else " ") + self.segmenter.decode(run) + token
                run, after_special = [], True
            else:
                run.append(token)
                after_special = False
        return out + self.segmenter.decode(run)


def gpt_sw3_tokenizer(model_file: str | os.PathLike, tokenizer_config: dict[str, Any] | None = None,
                      **kwargs: Any) -> GPTSw3Tokenizer:
    """GPT-SW3's tokenizer. Its 7B checkpoints pad with `<unk>` and begin with `<|endoftext|>` (transformers tells
    them by the name in the path); the others use `<pad>` and `<s>`."""
    specials = {"eos_token": ENDOFTEXT, "unk_token": "<unk>", "pad_token": "<pad>", "bos_token": "<s>"}
    if "gpt-sw3-7b" in os.fspath(model_file):
        specials.update(pad_token="<unk>", bos_token=ENDOFTEXT)
    options = {**specials, **special_tokens_from_config(tokenizer_config or {}), **kwargs}
    segmenter = processor(model_file)
    vocab = {segmenter.id_to_piece(i): i for i in range(segmenter.get_piece_size())}
    backend = word_level_backend(vocab, options["unk_token"], [options[k] for k in specials])
    return GPTSw3Tokenizer(backend, segmenter, {"spiece.model": os.fspath(model_file)}, **options)


__all__ = ["gpt2_tokenizer", "gpt_sw3_tokenizer", "GPTSw3Tokenizer"]

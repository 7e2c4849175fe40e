"""RoBERTa's tokenizer from `vocab.json` + `merges.txt`: byte-level BPE, `<s> A </s>` and `<s> A </s></s> B </s>`.

As transformers' RobertaTokenizerFast: `add_prefix_space` (default False) adds a space before the text,
`trim_offsets` (default True) trims spaces from offsets; no segment ids.
"""

from __future__ import annotations

import os
from typing import Any

from tokenizers import AddedToken, processors

from flaxformers.tokenizers import Tokenizer, special_tokens_from_config
from flaxformers.tokenizers.bpe import byte_level_bpe

ROBERTA_SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                          "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}


def roberta_tokenizer(vocab_json: str | os.PathLike, merges_txt: str | os.PathLike,
                      tokenizer_config: dict[str, Any] | None = None, **kwargs: Any) -> Tokenizer:
    """Options come from `tokenizer_config.json` (special tokens, `add_prefix_space`, `trim_offsets`,
    `model_max_length`); keywords override them."""
    config = dict(tokenizer_config or {})
    add_prefix_space = kwargs.pop("add_prefix_space", config.get("add_prefix_space", False))
    trim_offsets = kwargs.pop("trim_offsets", config.get("trim_offsets", True))
    options = {**ROBERTA_SPECIAL_TOKENS, **special_tokens_from_config(config), **kwargs}
    backend = byte_level_bpe(vocab_json, merges_txt, add_prefix_space=add_prefix_space)
    specials = [options[k] for k in ROBERTA_SPECIAL_TOKENS if backend.token_to_id(options[k]) is not None]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in dict.fromkeys(specials)])
    sep, cls = options["sep_token"], options["cls_token"]
    for role, token in (("sep_token", sep), ("cls_token", cls)):
        if backend.token_to_id(token) is None:
            raise ValueError(f"{role}={token!r} is not in {os.fspath(vocab_json)}; pass {role}= with a token of this "
                             "vocabulary.")
    backend.post_processor = processors.RobertaProcessing(
        (sep, backend.token_to_id(sep)), (cls, backend.token_to_id(cls)), trim_offsets=trim_offsets,
        add_prefix_space=add_prefix_space,
    )
    return Tokenizer(backend, **options)


__all__ = ["roberta_tokenizer", "ROBERTA_SPECIAL_TOKENS"]

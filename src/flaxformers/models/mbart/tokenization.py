"""mBART's language codes over its tokenizer.json: sources end with `</s> src_lang`, targets with
`</s> tgt_lang` (mBART-50: they start with the language code and end with `</s>`), as transformers'
MBartTokenizer and MBart50Tokenizer do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tokenizers import processors

from flaxformers.tokenizers import Tokenizer

# tokenizer_config.json's `tokenizer_class` -> whether the language code comes first (mBART-50)
CODE_FIRST: dict[str, bool] = {"MBartTokenizer": False, "MBartTokenizerFast": False, "MBart50Tokenizer": True,
              "MBart50TokenizerFast": True}


class MBartTokenizer(Tokenizer):
    """A Tokenizer whose special tokens follow `src_lang` (sources) and `tgt_lang` (`text_target=`)."""

    code_first = False

    def __init__(self, backend: Any, *, src_lang: str = "en_XX", tgt_lang: str | None = None, **kwargs: Any):
        super().__init__(backend, **kwargs)
        self.tgt_lang = tgt_lang
        self.src_lang = src_lang

    @property
    def src_lang(self) -> str:
        return self._src_lang

    @src_lang.setter
    def src_lang(self, lang: str) -> None:
        self._src_lang = lang
        self._use_language(lang)

    @contextlib.contextmanager
    def target_mode(self) -> Iterator[None]:
        self._use_language(self.tgt_lang if self.tgt_lang is not None else self._src_lang)
        try:
            yield
        finally:
            self._use_language(self._src_lang)

    def _use_language(self, lang: str) -> None:
        code = self.backend.token_to_id(lang)
        if code is None:
            raise ValueError(f"Language code {lang!r} is not in this tokenizer's vocabulary (e.g. 'en_XX', 'ro_RO').")
        eos = self.eos_token or "</s>"
        prefix, suffix = ([lang], [eos]) if self.code_first else ([], [eos, lang])
        self.backend.post_processor = processors.TemplateProcessing(
            single=[*prefix, "$A", *suffix], pair=[*prefix, "$A", "$B", *suffix],
            special_tokens=[(eos, self.backend.token_to_id(eos)), (lang, code)],
        )


class MBart50Tokenizer(MBartTokenizer):
    code_first = True


def mbart_tokenizer(tokenizer: Tokenizer, config: dict[str, Any], **options: Any) -> MBartTokenizer:
    """The mBART tokenizer over a tokenizer.json-built one; `src_lang` / `tgt_lang` from the keywords,
    else tokenizer_config.json."""
    cls = MBart50Tokenizer if CODE_FIRST.get(config.get("tokenizer_class"), False) else MBartTokenizer
    keep = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token", "padding_side",
            "model_max_length", "chat_template")
    return cls(tokenizer.backend, src_lang=options.get("src_lang", config.get("src_lang") or "en_XX"),
               tgt_lang=options.get("tgt_lang", config.get("tgt_lang")), **{k: getattr(tokenizer, k) for k in keep})

"""Tokenizers over the `tokenizers` library, returning numpy batches with left or right padding.

`AutoTokenizer.from_pretrained(dir)` reads `tokenizer.json` when present, else the legacy files its
family declares (`TokenizerHint`: e.g. `vocab.json` + `merges.txt`, or `vocab.txt`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tokenizers

from flaxformers.checkpoints.hub import PushToHubMixin, resolve_file, resolve_first
from flaxformers.registry import TokenizerHint
from flaxformers.tokenizers.chat import ChatTemplateError, render

TextInput = str | Sequence[str]
CHAT_TEMPLATE_FILE = "chat_template.jinja"
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")


class BatchEncoding(dict):
    """A tokenizer's output: name -> array, plus the `tokenizers` Encodings of its rows (unpadded).

    It goes into jitted functions as the dict of arrays it is (a pytree whose leaves are the arrays).
    """

    def __init__(self, encodings: list[tokenizers.Encoding]):
        super().__init__()
        self.encodings = encodings
        _register_pytree()

    def word_ids(self, index: int = 0) -> list[int | None]:
        """The word of each token of row `index` (None for special tokens)."""
        return self.encodings[index].word_ids

    def sequence_ids(self, index: int = 0) -> list[int | None]:
        """Which text of a pair (0 or 1) each token of row `index` comes from (None for special tokens)."""
        return self.encodings[index].sequence_ids


@functools.cache
def _register_pytree() -> None:
    """Make BatchEncoding a JAX pytree, on first use (importing this module does not import jax)."""
    import jax

    jax.tree_util.register_pytree_node(BatchEncoding, lambda batch: (list(batch.values()), tuple(batch)),
                                       lambda keys, values: dict(zip(keys, values)))


class Tokenizer(PushToHubMixin):
    """A `tokenizers.Tokenizer` plus the special tokens and padding rules transformers users expect."""

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        *,
        bos_token: str | None = None,
        eos_token: str | None = None,
        unk_token: str | None = None,
        pad_token: str | None = None,
        sep_token: str | None = None,
        cls_token: str | None = None,
        mask_token: str | None = None,
        padding_side: str = "right",
        model_max_length: int | None = None,
        chat_template: str | dict[str, str] | None = None,
    ):
        self.backend = backend
        self.chat_template = chat_template
        self.bos_token, self.eos_token, self.unk_token = bos_token, eos_token, unk_token
        self.pad_token, self.sep_token, self.cls_token, self.mask_token = pad_token, sep_token, cls_token, mask_token
        self.padding_side = padding_side
        self.model_max_length = model_max_length
        self.backend.no_padding()
        self.backend.no_truncation()
        self._register_special_tokens()

    # --- special tokens --------------------------------------------------------------------------
    def _register_special_tokens(self) -> None:
        """Named special tokens the backend does not know as added tokens become special ones (as
        transformers does on load): the text `</s>` then encodes to the token, and decoding with
        `skip_special_tokens` drops it, even where it is an ordinary entry of the model's vocabulary."""
        known = {token.content for token in self.backend.get_added_tokens_decoder().values()}
        named = (self.bos_token, self.eos_token, self.unk_token, self.pad_token, self.sep_token,
                 self.cls_token, self.mask_token)
        missing = list(dict.fromkeys(t for t in named if t is not None and t not in known))
        if missing:
            self.backend.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in missing])

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)

    bos_token_id = property(lambda self: self._id(self.bos_token))
    eos_token_id = property(lambda self: self._id(self.eos_token))
    unk_token_id = property(lambda self: self._id(self.unk_token))
    sep_token_id = property(lambda self: self._id(self.sep_token))
    cls_token_id = property(lambda self: self._id(self.cls_token))
    mask_token_id = property(lambda self: self._id(self.mask_token))

    @property
    def pad_token_id(self) -> int | None:
        return self._id(self.pad_token)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self.backend.token_to_id(tokens)
        return [self.backend.token_to_id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        if isinstance(ids, int | np.integer):
            return self.backend.id_to_token(int(ids))
        return [self.backend.id_to_token(int(i)) for i in ids]

    # --- encode / decode -------------------------------------------------------------------------
    # What the backend encodes for a text: the text itself, or (`pretokenized`) the pieces a subclass cuts it into.
    pretokenized = False

    def _backend_input(self, text: Any) -> Any:
        return text

    def _backend_encode(self, text: str, text_pair: str | None = None,
                        add_special_tokens: bool = True) -> tokenizers.Encoding:
        pair = None if text_pair is None else self._backend_input(text_pair)
        return self.backend.encode(self._backend_input(text), pair, is_pretokenized=self.pretokenized,
                                   add_special_tokens=add_special_tokens)

    def tokenize(self, text: str) -> list[str]:
        return self._backend_encode(text, add_special_tokens=False).tokens

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True) -> list[int]:
        return self._backend_encode(text, text_pair, add_special_tokens).ids

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = False) -> str:
        return self.backend.decode([int(i) for i in np.asarray(ids).reshape(-1)], skip_special_tokens=skip_special_tokens)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(s, skip_special_tokens=skip_special_tokens) for s in np.asarray(sequences)]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join tokens into text with the tokenizer's decoder (e.g. "##" pieces glued, byte-level bytes decoded)."""
        decoder = self.backend.decoder
        return decoder.decode(list(tokens)) if decoder is not None else " ".join(tokens)

    def __call__(
        self,
        text: TextInput | Sequence[Sequence[str]] | None = None,
        text_pair: TextInput | None = None,
        *,
        text_target: TextInput | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = True,
        truncation: bool | str = False,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        padding_side: str | None = None,
        return_token_type_ids: bool | None = None,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
        return_overflowing_tokens: bool = False,
        return_tensors: str | None = "np",
    ) -> BatchEncoding:
        """Encode one text or a batch into `input_ids`, `attention_mask` (and `token_type_ids`).

        As transformers' fast tokenizers: `truncation` is True / "longest_first" / "only_first" /
        "only_second"; `return_overflowing_tokens` adds a row per window of `max_length` tokens that
        overlap by `stride`, and `overflow_to_sample_mapping`; `return_offsets_mapping` gives each
        token's (start, end) characters [N, T, 2]. The result's `encodings` hold the `tokenizers`
        Encodings (unpadded), for `word_ids(i)` and `sequence_ids(i)`. `text_target` is encoded as an
        encoder-decoder's targets (the target language's special tokens, or vocabulary): alone it gives
        their `input_ids`; with `text` it becomes the `labels`.
        """
        options = dict(add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                       max_length=max_length, stride=stride, is_split_into_words=is_split_into_words,
                       padding_side=padding_side, return_token_type_ids=return_token_type_ids,
                       return_offsets_mapping=return_offsets_mapping,
                       return_special_tokens_mask=return_special_tokens_mask,
                       return_overflowing_tokens=return_overflowing_tokens, return_tensors=return_tensors)
        if text_target is not None:
            with self.target_mode():
                targets = self._encode(text_target, None, **options)
            if text is None:
                return targets
            encoded = self._encode(text, text_pair, **options)
            encoded["labels"] = targets["input_ids"]
            return encoded
        if text is None:
            raise ValueError("Pass text= (and/or text_target=) to encode.")
        return self._encode(text, text_pair, **options)

    def target_mode(self) -> contextlib.AbstractContextManager:
        """Encode targets inside this context (the same as sources for one-vocabulary tokenizers)."""
        return contextlib.nullcontext()

    def _encode(self, text: Any, text_pair: TextInput | None, *, add_special_tokens: bool, padding: bool | str,
                truncation: bool | str, max_length: int | None, stride: int, is_split_into_words: bool,
                padding_side: str | None, return_token_type_ids: bool | None, return_offsets_mapping: bool,
                return_special_tokens_mask: bool, return_overflowing_tokens: bool,
                return_tensors: str | None) -> BatchEncoding:
        single = isinstance(text, str) or (is_split_into_words and bool(text) and isinstance(text[0], str))
        texts = [text] if single else list(text)
        pairs = None if text_pair is None else ([text_pair] if isinstance(text_pair, str) else list(text_pair))
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"text has {len(texts)} items but text_pair has {len(pairs)}; pass one pair per text.")
        if self.pretokenized and (is_split_into_words or return_offsets_mapping):
            raise ValueError("is_split_into_words and return_offsets_mapping need a tokenizer that encodes text itself; "
                             "this one encodes the pieces SentencePiece cuts (as transformers' Python tokenizer). "
                             "Pass whole texts, without return_offsets_mapping.")
        texts = [self._backend_input(t) for t in texts]
        inputs = texts if pairs is None else list(zip(texts, [self._backend_input(p) for p in pairs]))
        if truncation:
            strategy = "longest_first" if truncation is True else truncation
            if strategy not in TRUNCATION_STRATEGIES:
                raise ValueError(f"truncation={truncation!r}; expected True, False or one of {TRUNCATION_STRATEGIES}.")
            limit = max_length or self.model_max_length
            if limit is None:
                raise ValueError("truncation=True needs max_length= (this tokenizer has no model_max_length).")
            # The backend truncates the text and keeps the special tokens ([CLS] ... [SEP]), as transformers does.
            self.backend.enable_truncation(limit, stride=stride, strategy=strategy)
        elif return_overflowing_tokens:
            raise ValueError("return_overflowing_tokens=True needs truncation= (and max_length=) to make windows.")
        try:
            encodings = self.backend.encode_batch(inputs, add_special_tokens=add_special_tokens,
                                                  is_pretokenized=is_split_into_words or self.pretokenized)
        finally:
            self.backend.no_truncation()
        samples = list(range(len(encodings)))
        if return_overflowing_tokens:
            samples = [i for i, e in enumerate(encodings) for _ in range(1 + len(e.overflowing))]
            encodings = [w for e in encodings for w in (e, *e.overflowing)]
        rows = [list(e.ids) for e in encodings]
        side = padding_side or self.padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side={side!r}; expected 'left' or 'right'.")
        if padding == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length=.")
            width = max_length
        else:
            width = max(len(r) for r in rows) if padding else None
        if width is None:
            if len({len(r) for r in rows}) > 1:
                raise ValueError("Sequences have different lengths: pass padding=True to batch them.")
            width = len(rows[0])
        pad_id = self.pad_token_id if self.pad_token_id is not None else self.eos_token_id
        if pad_id is None and any(len(r) < width for r in rows):
            raise ValueError("This tokenizer has no pad or eos token to pad with; set tokenizer.pad_token.")
        # name -> (what padding holds, each row's values)
        fields: dict[str, tuple[Any, list]] = {"input_ids": (pad_id or 0, rows),
                                               "attention_mask": (0, [[1] * len(r) for r in rows])}
        if return_token_type_ids or (return_token_type_ids is None and self.uses_token_types):
            fields["token_type_ids"] = (0, [e.type_ids for e in encodings])
        if return_special_tokens_mask:
            fields["special_tokens_mask"] = (1, [e.special_tokens_mask for e in encodings])
        if return_offsets_mapping:
            fields["offset_mapping"] = ((0, 0), [e.offsets for e in encodings])
        out = BatchEncoding(encodings)
        for name, (fill, values) in fields.items():
            array = np.full((len(rows), width, 2) if name == "offset_mapping" else (len(rows), width), fill, np.int32)
            for i, row in enumerate(values):
                if len(row) > width:
                    raise ValueError(f"Sequence {i} has {len(row)} tokens, more than max_length={width}; "
                                     "pass truncation=True.")
                if row:
                    array[i, slice(width - len(row), width) if side == "left" else slice(0, len(row))] = row
            out[name] = array
        if return_overflowing_tokens:
            out["overflow_to_sample_mapping"] = np.asarray(samples, np.int32)
        return out

    uses_token_types = False

    # --- chat ------------------------------------------------------------------------------------
    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in _SPECIAL_KEYS if getattr(self, k) is not None}

    def get_chat_template(self, chat_template: str | None = None, tools: list | None = None) -> str:
        """The template to render with: `chat_template` (a template or the name of one), else the tokenizer's."""
        templates = self.chat_template
        if isinstance(templates, dict):
            if chat_template in templates:
                return templates[chat_template]
            if chat_template is None:
                name = "tool_use" if tools is not None and "tool_use" in templates else "default"
                if name not in templates:
                    raise ChatTemplateError(f"This tokenizer has several chat templates and no default: pass "
                                            f"chat_template= one of {sorted(templates)}.")
                return templates[name]
        if chat_template is not None:
            return chat_template
        if templates is None:
            raise ChatTemplateError("This tokenizer has no chat template (tokenizer.chat_template is None): pass "
                                    "chat_template=, or load a chat model's tokenizer.")
        return templates

    def apply_chat_template(
        self,
        conversation: list | list[list],
        tools: list | None = None,
        documents: list[dict] | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        continue_final_message: bool | str = False,
        tokenize: bool = True,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_dict: bool = False,
        return_assistant_tokens_mask: bool = False,
        tokenizer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Render chat messages with the model's template, as transformers 4.57 does: the text
        (`tokenize=False`), the token ids, or (`return_dict=True`) the tokenizer's output dict.

        `conversation` is one chat (a list of {"role", "content"} dicts) or a batch of them. Extra
        keyword arguments are template variables, as are the special tokens (`bos_token`, ...).
        """
        template = self.get_chat_template(chat_template, tools)
        if not conversation:
            raise ChatTemplateError("Cannot render an empty conversation; pass at least one message.")
        batched = isinstance(conversation[0], list | tuple)
        chats = conversation if batched else [conversation]
        if return_assistant_tokens_mask and not (tokenize and return_dict):
            raise ChatTemplateError("return_assistant_tokens_mask=True needs tokenize=True and return_dict=True.")
        if return_assistant_tokens_mask and self.pretokenized:
            raise ChatTemplateError("return_assistant_tokens_mask=True needs character offsets, which this "
                                    "SentencePiece-segmented tokenizer does not keep; drop the option.")
        spans: list[list] = [[] for _ in chats]
        texts = [render(chat, template, tools=tools, documents=documents, add_generation_prompt=add_generation_prompt,
                        continue_final_message=continue_final_message,
                        assistant_spans=row_spans if return_assistant_tokens_mask else None,
                        **{**self.special_tokens_map, **kwargs})
                 for chat, row_spans in zip(chats, spans)]
        if not tokenize:
            return texts if batched else texts[0]
        rows = [self._backend_encode(t, add_special_tokens=False) for t in texts]
        if not return_dict and not padding and return_tensors is None and not truncation:
            ids = [list(r.ids) for r in rows]
            return ids if batched else ids[0]
        out = self(texts, add_special_tokens=False, padding=padding or "longest", truncation=truncation,
                   max_length=max_length, **(tokenizer_kwargs or {}))
        if return_assistant_tokens_mask:
            out["assistant_masks"] = _assistant_masks(rows, spans, out["input_ids"].shape[1],
                                                      self.padding_side if padding else "right")
        unwrap = not batched and return_tensors is None  # tensors keep the batch axis, as in transformers
        if not return_dict:
            return out["input_ids"][0] if unwrap else out["input_ids"]
        if unwrap:
            out = {k: v[0] for k, v in out.items()}
        return out

    # --- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, tokenizer_json: str, config: dict[str, Any] | None = None, **kwargs: Any) -> Tokenizer:
        backend = tokenizers.Tokenizer.from_file(tokenizer_json)
        _set_normalizer_options(backend, config or {}, kwargs)
        tokenizer = cls(backend, **{**special_tokens_from_config(config or {}), **kwargs})
        tokenizer.uses_token_types = _uses_token_types(backend, config or {})
        return tokenizer

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """tokenizer.json, tokenizer_config.json and (for one chat template) chat_template.jinja."""
        from flaxformers.checkpoints.io import atomic_write_text

        os.makedirs(directory, exist_ok=True)
        config: dict[str, Any] = {**self.special_tokens_map, "padding_side": self.padding_side,
                                  "model_max_length": self.model_max_length, **self._save_vocabulary(directory)}
        if isinstance(self.chat_template, str):
            atomic_write_text(os.path.join(directory, CHAT_TEMPLATE_FILE), self.chat_template)
        elif self.chat_template:
            config["chat_template"] = [{"name": k, "template": v} for k, v in self.chat_template.items()]
        atomic_write_text(os.path.join(directory, "tokenizer_config.json"), json.dumps(config, indent=2) + "\n")

    def _save_vocabulary(self, directory: str | os.PathLike) -> dict[str, Any]:
        """Write the vocabulary files; return what tokenizer_config.json must add to reload them."""
        from flaxformers.checkpoints.io import atomic_write_text

        atomic_write_text(os.path.join(directory, "tokenizer.json"), self.backend.to_str())
        return {}


def _uses_token_types(backend: tokenizers.Tokenizer, config: dict[str, Any]) -> bool:
    """Whether the model takes segment ids: `model_input_names` of tokenizer_config.json when it says, else
    whether the post-processor gives a pair's second sequence segment id 1 (`[CLS] A [SEP] B [SEP]`)."""
    names = config.get("model_input_names")
    if names:
        return "token_type_ids" in names
    processor = json.loads(backend.to_str()).get("post_processor") or {}
    steps = processor.get("processors", [processor]) if processor.get("type") == "Sequence" else [processor]
    for step in steps:
        if step.get("type") == "BertProcessing":
            return True
        pair = step.get("pair", []) if step.get("type") == "TemplateProcessing" else []
        if any(piece.get(kind, {}).get("type_id") for piece in pair for kind in ("Sequence", "SpecialToken")):
            return True
    return False


# transformers' BertTokenizerFast option -> the BertNormalizer field it sets
_NORMALIZER_OPTIONS = {"do_lower_case": "lowercase", "strip_accents": "strip_accents",
                       "tokenize_chinese_chars": "handle_chinese_chars"}


def _set_normalizer_options(backend: tokenizers.Tokenizer, config: dict[str, Any], kwargs: dict[str, Any]) -> None:
    """`do_lower_case` and friends, from keywords (popped) or tokenizer_config.json, override the
    normalizer of tokenizer.json, as transformers' BertTokenizerFast does."""
    explicit = {field: kwargs.pop(key) for key, field in _NORMALIZER_OPTIONS.items() if key in kwargs}
    from_config = {field: config[key] for key, field in _NORMALIZER_OPTIONS.items() if key in config}
    state = json.loads(backend.to_str()).get("normalizer") or {}
    if state.pop("type", None) != "BertNormalizer":
        if explicit:
            raise ValueError(f"{sorted(explicit)} apply to a WordPiece tokenizer, but this tokenizer.json "
                             "has no BertNormalizer. Drop the option, or edit the normalizer in tokenizer.json.")
        return
    given = {**from_config, **explicit}
    if any(state.get(field) != value for field, value in given.items()):
        backend.normalizer = tokenizers.normalizers.BertNormalizer(**{**state, **given})


_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


def _assistant_masks(rows: list, spans: list[list], width: int, side: str):
    """1 on the tokens of each `{% generation %}` block's text, per row, padded like the ids."""
    masks = np.zeros((len(rows), width), np.int32)
    for i, (row, row_spans) in enumerate(zip(rows, spans)):
        pad = width - len(row.ids) if side == "left" else 0
        for start, text in row_spans:
            for token, (begin, end) in enumerate(row.offsets):
                if begin < start + len(text) and end > start:
                    masks[i, pad + token] = 1
    return masks


def special_tokens_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Special tokens and options from a `tokenizer_config.json` (tokens may be AddedToken dicts);
    its `chat_template` (a string, or a list of named templates) too."""
    out: dict[str, Any] = {}
    for key in _SPECIAL_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if value is not None:
            out[key] = value
    if config.get("padding_side") in ("left", "right"):
        out["padding_side"] = config["padding_side"]
    max_len = config.get("model_max_length")
    if isinstance(max_len, int) and max_len < 10**9:
        out["model_max_length"] = max_len
    template = config.get("chat_template")
    if isinstance(template, list):
        template = {t["name"]: t["template"] for t in template}
    if template:
        out["chat_template"] = template
    return out


class AutoTokenizer:
    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs: Any) -> Tokenizer:
        hub = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        path = os.fspath(path_or_repo_id)
        gguf_file = kwargs.pop("gguf_file", None)
        if gguf_file is not None:
            from flaxformers.auto import gguf_path
            from flaxformers.tokenizers.gguf import gguf_tokenizer

            return gguf_tokenizer(gguf_path(path, gguf_file), **kwargs)
        config_path = resolve_file(path, "tokenizer_config.json", required=False, **hub)
        config = {}
        if config_path:
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
        template_path = resolve_file(path, CHAT_TEMPLATE_FILE, required=False, **hub)
        if template_path:  # a chat_template.jinja beside the tokenizer wins, as in transformers
            with open(template_path, encoding="utf-8") as f:
                config["chat_template"] = f.read()
        file = resolve_file(path, "tokenizer.json", required=False, **hub)
        if file is not None:
            options = {k: kwargs.pop(k) for k in _ADAPT_OPTIONS if k in kwargs}
            tokenizer = Tokenizer.from_file(file, config, **kwargs)
            family_hint = _model_type_hint(path, hub)
            if family_hint is not None and family_hint.token_type_ids is not None and not config.get("model_input_names"):
                tokenizer.uses_token_types = family_hint.token_type_ids
            hint = _family_hint(path, config, hub)
            if hint is not None and hint.adapt is not None:  # what tokenizer.json does not say (language codes)
                tokenizer = hint.load_adapt()(tokenizer, config, **options)
            elif options:
                raise ValueError(f"{sorted(options)} apply to tokenizers with language codes; this "
                                 "one has none. Drop them.")
            return tokenizer
        hint = _legacy_hint(path, config, hub)
        files = [resolve_file(path, name, **hub) for name in hint.files]
        optional = [resolve_file(path, name, required=False, **hub) for name in hint.optional_files]
        return hint.load()(*files, *optional, config, **kwargs)


# AutoTokenizer.from_pretrained keywords that a family's `adapt` takes
_ADAPT_OPTIONS = ("src_lang", "tgt_lang")


def _model_type_hint(path: str, hub: dict[str, Any]) -> TokenizerHint | None:
    """The tokenizer hint of the family of `config.json`'s model_type, if the directory has one."""
    from flaxformers import registry

    model_config = resolve_file(path, "config.json", required=False, **hub)
    if model_config is None:
        return None
    with open(model_config, encoding="utf-8") as f:
        model_type = json.load(f).get("model_type")
    family = registry.model_types().get(model_type, (None,))[0]
    return None if family is None else family.tokenizer_for(model_type)


def _family_hint(path: str, config: dict[str, Any], hub: dict[str, Any]) -> TokenizerHint | None:
    """The tokenizer hint of the checkpoint's family: by `tokenizer_class`, else `model_type`."""
    from flaxformers import registry

    tokenizer_class = config.get("tokenizer_class")
    for _, hint in registry.tokenizer_hints():
        if tokenizer_class in hint.classes:
            return hint
    return _model_type_hint(path, hub)


def _legacy_hint(path: str, config: dict[str, Any], hub: dict[str, Any]) -> TokenizerHint:
    """Which family's legacy files to read: by `tokenizer_class`, else `model_type`, else the files there."""
    from flaxformers import registry

    hint = _family_hint(path, config, hub)
    if hint is not None and hint.files:
        return hint
    hints = [hint for _, hint in registry.tokenizer_hints() if hint.files]
    for hint in hints:
        if hint.by_files and resolve_first(path, hint.files[:1], **hub) is not None:
            return hint
    known = sorted({" + ".join(hint.files) for hint in hints})
    raise OSError(f"{path!r} has no tokenizer files: expected tokenizer.json or one of {known}.")


__all__ = ["Tokenizer", "AutoTokenizer", "BatchEncoding", "special_tokens_from_config"]

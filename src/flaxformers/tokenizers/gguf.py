"""A tokenizer built from a GGUF file's vocabulary (`tokenizer.ggml.*` metadata).

A GGUF carries no `tokenizer.json`: it stores the tokens, their scores and types, and (for byte-level
BPE) the merges. We rebuild the `tokenizers` pipeline that transformers' GGUF loader builds, so the
ids are the same:

- "sentencepiece": BPE with byte fallback over the SentencePiece pieces. The file has no merges; they
  are every split of a token into two vocabulary pieces. By default (transformers' Gemma reading) they
  rank by the token's position in the file (scores need not follow the merge order), spaces become "▁"
  and no dummy prefix is added; with `dummy_prefix=True` (transformers' Llama reading) they rank by
  score, and "▁" is prepended to the text and stripped again when decoding.
- "byte-level": byte-level BPE with the file's merges and the pre-tokenizer its `tokenizer.ggml.pre`
  names (the family declares the patterns it knows).
- "wordpiece" (llama.cpp's WPM): WordPiece, undoing llama.cpp's respelling ("▁word" for a word start,
  "piece" for a "##piece" continuation).

Which builder reads which `tokenizer.ggml.model` is declared per architecture by the family
(`GGUFArchitecture.tokenizers`).

Tokens typed CONTROL become special added tokens and USER_DEFINED ones plain added tokens, so they
are matched whole in text, as llama.cpp and transformers do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import tokenizers
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors

from flaxformers.checkpoints.gguf import GGUFFile, read_gguf
from flaxformers.checkpoints.gguf_mapping import GGUFTokenizer
from flaxformers.registry import gguf_architectures
from flaxformers.tokenizers import Tokenizer

SPIECE_SPACE = "\u2581"
# llama.cpp token types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _tokens(f: GGUFFile) -> list[str]:
    if "tokenizer.ggml.tokens" not in f.metadata:
        raise ValueError(f"{f.path} has no vocabulary (`tokenizer.ggml.tokens`); pass a tokenizer directory instead.")
    return f.strings("tokenizer.ggml.tokens")


def _token_types(f: GGUFFile, count: int) -> list[int]:
    types = f.metadata.get("tokenizer.ggml.token_type")
    return [NORMAL] * count if types is None else [int(t) for t in types]


def _special(f: GGUFFile, tokens: list[str], key: str) -> str | None:
    token_id = f.metadata.get(f"tokenizer.ggml.{key}")
    return tokens[int(token_id)] if token_id is not None and 0 <= int(token_id) < len(tokens) else None


def _merges_by_position(vocab: dict[str, int]) -> list[tuple[str, str]]:
    """Every split of a token into two vocabulary pieces, best first: the earlier the merged token
    sits in the file, the higher its merge ranks; within a token, the longer left piece first."""
    merges = []
    for token, _ in sorted(vocab.items(), key=lambda item: item[1]):
        for cut in range(len(token) - 1, 0, -1):
            left, right = token[:cut], token[cut:]
            if left in vocab and right in vocab:
                merges.append((left, right))
    return merges


def _merges_by_score(tokens: list[str], scores: list[float]) -> list[tuple[str, str]]:
    """Every split of a token into two vocabulary pieces, ranked by the token's score (best first), then
    by the longer pieces, as transformers' `generate_merges` ranks them."""
    vocab = {token: index for index, token in enumerate(tokens)}
    merges = []
    for token, score in dict(zip(tokens, scores)).items():
        local = [(token[:cut], token[cut:], score) for cut in range(1, len(token))
                 if token[:cut] in vocab and token[cut:] in vocab]
        merges += sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(left, right) for left, right, _ in merges]


def _spm_backend(f: GGUFFile, tokens: list[str], unk_token: str, dummy_prefix: bool) -> tokenizers.Tokenizer:
    if dummy_prefix:
        scores = f.metadata.get("tokenizer.ggml.scores")
        scores = [float(s) for s in scores] if scores is not None else [0.0] * len(tokens)
        vocab, merges = {token: index for index, token in enumerate(tokens)}, _merges_by_score(tokens, scores)
    else:
        # Runs of spaces are stored as spaces but looked up after " " -> "▁" normalization.
        spelled = [SPIECE_SPACE * len(t) if " " in t and not t.strip() else t for t in tokens]
        vocab = {token: index for index, token in enumerate(spelled)}
        merges = _merges_by_position(vocab)
    backend = tokenizers.Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token=unk_token, fuse_unk=True, byte_fallback=True)
    )
    steps = [decoders.Replace(SPIECE_SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if dummy_prefix:
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE_SPACE, prepend_scheme="first",
                                                         split=False)
        steps.append(decoders.Strip(content=" ", left=1))
    else:
        backend.normalizer = normalizers.Replace(" ", SPIECE_SPACE)
        backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    backend.decoder = decoders.Sequence(steps)
    return backend


def _byte_level_backend(f: GGUFFile, tokens: list[str], patterns: Mapping[str, str | None]) -> tokenizers.Tokenizer:
    """Byte-level BPE; `patterns` maps the `tokenizer.ggml.pre` names this architecture knows to their
    split regex (None: GPT-2's own pre-tokenizer)."""
    pre = f.metadata.get("tokenizer.ggml.pre", "default")
    if pre not in patterns:
        raise ValueError(
            f"{f.path}: byte-level pre-tokenizer {pre!r} is not supported for this architecture; known: "
            f"{sorted(patterns)}. Pass a tokenizer directory with tokenizer.json instead."
        )
    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    byte_char = _bytes_to_unicode()
    # Every real token is spelled in the byte alphabet; respell any that llama.cpp wrote as text.
    spelled = [t if set(t) <= alphabet else "".join(byte_char[b] for b in t.encode("utf-8")) for t in tokens]
    vocab = {token: index for index, token in enumerate(spelled)}
    merges = [tuple(m.split(" ", 1)) for m in f.strings("tokenizer.ggml.merges")] if (
        "tokenizer.ggml.merges" in f.metadata) else _merges_by_position(vocab)
    backend = tokenizers.Tokenizer(
        models.BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False)
    )
    if patterns[pre] is None:
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(tokenizers.Regex(patterns[pre]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    backend.decoder = decoders.ByteLevel()
    return backend


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable spelling of each byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def _wordpiece_backend(tokens: list[str], unk_token: str) -> tokenizers.Tokenizer:
    def unspell(token: str) -> str:  # llama.cpp's "phantom space" spelling back to WordPiece's
        if token.startswith("[") and token.endswith("]"):
            return token
        return token[1:] if token.startswith(SPIECE_SPACE) else "##" + token

    vocab = {unspell(t): i for i, t in enumerate(tokens)}
    backend = tokenizers.Tokenizer(models.WordPiece(vocab=vocab, unk_token=unk_token, max_input_chars_per_word=100))
    # llama.cpp's WPM lowercases and strips accents whatever the original model did.
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=None, lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def _added_tokens(backend: tokenizers.Tokenizer, tokens: list[str], types: list[int], byte_level: bool) -> None:
    """CONTROL tokens match whole as special tokens, USER_DEFINED ones as plain added tokens."""
    alphabet = set(pre_tokenizers.ByteLevel.alphabet()) if byte_level else None
    # A byte-level CONTROL token outside the byte alphabet is a llama.cpp mislabel; adding it would
    # grow the vocabulary past the model's embedding.
    control = [t for t, k in zip(tokens, types) if k == CONTROL and (alphabet is None or set(t) <= alphabet)]
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in control])
    vocab = backend.get_vocab(with_added_tokens=True)
    user = [t for t, k in zip(tokens, types) if k == USER_DEFINED and t in vocab]
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t in user])


def _template(backend: tokenizers.Tokenizer, first: str | None, last: str | None, pair_first: str | None,
              pair_last: str | None) -> None:
    """`first $A last`, and for pairs `first $A last pair_first $B:1 pair_last:1`; absent parts dropped."""
    def part(token: str | None, type_id: int = 0) -> list[str]:
        return [] if token is None else [f"{token}:{type_id}"]

    single = part(first) + ["$A:0"] + part(last)
    pair = single + part(pair_first, 1) + ["$B:1"] + part(pair_last, 1)
    specials = [(t, backend.token_to_id(t)) for t in {first, last, pair_first, pair_last} if t is not None]
    if specials:
        backend.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=specials)


def _sentencepiece(f: GGUFFile, tokens: list[str], types: list[int], specials: dict[str, str | None],
                   dummy_prefix: bool = False) -> tuple[tokenizers.Tokenizer, dict[str, Any]]:
    specials["unk_token"] = specials["unk_token"] or "<unk>"
    backend = _spm_backend(f, tokens, specials["unk_token"], dummy_prefix)
    _added_tokens(backend, tokens, types, byte_level=False)
    bos, eos = _bos_eos(f, specials, add_bos_default=True)
    _template(backend, bos, eos, bos, eos)  # transformers repeats the template for the second text of a pair
    return backend, {"padding_side": "left"}  # decoders generate from the right edge


def _byte_level(f: GGUFFile, tokens: list[str], types: list[int], specials: dict[str, str | None],
                pre_tokenizers: Mapping[str, str | None]) -> tuple[tokenizers.Tokenizer, dict[str, Any]]:
    backend = _byte_level_backend(f, tokens, pre_tokenizers)
    _added_tokens(backend, tokens, types, byte_level=True)
    bos, eos = _bos_eos(f, specials, add_bos_default=False)
    _template(backend, bos, eos, bos, eos)
    return backend, {"padding_side": "left"}


def _wordpiece(f: GGUFFile, tokens: list[str], types: list[int],
               specials: dict[str, str | None]) -> tuple[tokenizers.Tokenizer, dict[str, Any]]:
    cls_token = _special(f, tokens, "cls_token_id") or "[CLS]"
    sep_token = _special(f, tokens, "seperator_token_id") or _special(f, tokens, "sep_token_id") or "[SEP]"
    specials.update(cls_token=cls_token, sep_token=sep_token, mask_token=_special(f, tokens, "mask_token_id"),
                    unk_token=specials["unk_token"] or "[UNK]")
    backend = _wordpiece_backend(tokens, specials["unk_token"])
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True)
                                for t, k in zip(tokens, types) if k == CONTROL])
    _template(backend, cls_token, sep_token, None, sep_token)
    return backend, {"padding_side": "right"}


def _bos_eos(f: GGUFFile, specials: dict[str, str | None], add_bos_default: bool) -> tuple[str | None, str | None]:
    add_bos = bool(f.metadata.get("tokenizer.ggml.add_bos_token", add_bos_default))
    add_eos = bool(f.metadata.get("tokenizer.ggml.add_eos_token", False))
    return specials["bos_token"] if add_bos else None, specials["eos_token"] if add_eos else None


def _builder_spec(f: GGUFFile) -> GGUFTokenizer:
    """The family's `GGUFTokenizer` for this file's architecture and `tokenizer.ggml.model`."""
    kind = f.metadata.get("tokenizer.ggml.model")
    known = {arch: spec.tokenizers for arch, spec in gguf_architectures().items()}
    spec = known.get(f.metadata.get("general.architecture"), {}).get(kind)
    if spec is None:
        supported = sorted(f"{m!r} in {a!r}" for a, kinds in known.items() for m in kinds)
        raise ValueError(
            f"{f.path}: cannot build a tokenizer for `tokenizer.ggml.model` = {kind!r} in a "
            f"{f.metadata.get('general.architecture')!r} file; supported: {', '.join(supported)}. "
            "Pass a directory with tokenizer.json instead."
        )
    return spec


# The generic builders a family's `GGUFTokenizer` names.
BUILDERS = {"sentencepiece": _sentencepiece, "byte-level": _byte_level, "wordpiece": _wordpiece}


def gguf_tokenizer(gguf: str | os.PathLike | GGUFFile, **kwargs: Any) -> Tokenizer:
    """The tokenizer a GGUF file describes, wrapped as a flaxformers `Tokenizer`.

    The file's architecture (its family's declaration) says which builder reads its
    `tokenizer.ggml.model`. Keyword arguments override the wrapper's options (special tokens,
    `padding_side`, ...).
    """
    f = gguf if isinstance(gguf, GGUFFile) else read_gguf(gguf)
    tokens = _tokens(f)
    types = _token_types(f, len(tokens))
    spec = _builder_spec(f)
    specials = {
        "bos_token": _special(f, tokens, "bos_token_id"),
        "eos_token": _special(f, tokens, "eos_token_id"),
        "unk_token": _special(f, tokens, "unknown_token_id"),
        "pad_token": _special(f, tokens, "padding_token_id"),
    }
    backend, options = BUILDERS[spec.builder](f, tokens, types, specials, **spec.options)
    context = f.metadata.get(f"{f.architecture}.context_length")
    if context is not None:
        options["model_max_length"] = int(context)
    if isinstance(f.metadata.get("tokenizer.chat_template"), str):
        options["chat_template"] = f.metadata["tokenizer.chat_template"]
    wrapper = Tokenizer(backend, **{k: v for k, v in specials.items() if v is not None}, **{**options, **kwargs})
    wrapper.uses_token_types = spec.builder == "wordpiece"
    return wrapper


__all__ = ["BUILDERS", "gguf_tokenizer"]

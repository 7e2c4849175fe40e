"""SentencePiece models (`*.model`) as `tokenizers` backends, the way transformers converts them.

`read_model(path)` parses the model proto (it needs the `sentencepiece` package: `pip install
flaxformers[sentencepiece]`); `unigram_backend(...)` builds the Unigram tokenizer: optional normalizers
before the model's own precompiled character map, whitespace split and the `▁` Metaspace
(prepended to each word when `add_prefix_space`), and the matching decoder. Families shape what differs
as data: the vocabulary (`pieces(model)`, possibly re-ordered or extended, e.g. fairseq's id offset),
the unknown token's id, extra normalizers (lowercasing, accents) and the post-processor.
"""

from __future__ import annotations

import os
from typing import Any

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers

UNIGRAM, BPE = 1, 2  # trainer_spec.model_type


def read_model(path: str | os.PathLike) -> Any:
    """The ModelProto of a SentencePiece `.model` file."""
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as e:
        raise ImportError(f"Reading {os.fspath(path)} needs the `sentencepiece` package: "
                          "pip install 'flaxformers[sentencepiece]' (or `pip install sentencepiece`).") from e
    model = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        model.ParseFromString(f.read())
    return model


def pieces(model: Any) -> list[tuple[str, float]]:
    """(piece, score) in id order."""
    return [(p.piece, p.score) for p in model.pieces]


def unigram_backend(model: Any, vocab: list[tuple[str, float]] | None = None, unk_id: int | None = None,
                    extra_normalizers: list[Any] = (), add_prefix_space: bool = True) -> tokenizers.Tokenizer:
    """The Unigram backend of `model` (its pieces, or `vocab`), without special tokens or post-processor."""
    if model.trainer_spec.model_type != UNIGRAM:
        raise ValueError(f"This SentencePiece model has model_type={model.trainer_spec.model_type}; only Unigram "
                         f"({UNIGRAM}) models convert here.")
    vocab = pieces(model) if vocab is None else vocab
    backend = tokenizers.Tokenizer(models.Unigram(vocab, unk_id=model.trainer_spec.unk_id if unk_id is None else unk_id,
                                                  byte_fallback=False))
    steps = list(extra_normalizers)
    if model.normalizer_spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(model.normalizer_spec.precompiled_charsmap))
    if steps:
        backend.normalizer = normalizers.Sequence(steps)
    scheme = "always" if add_prefix_space else "never"
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)]
    )
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme)
    return backend


__all__ = ["BPE", "UNIGRAM", "pieces", "read_model", "unigram_backend"]

"""SentencePiece models (`*.model`, `*.spm`) as tokenizers, the two ways transformers 5 runs them.

Converted (transformers' fast tokenizers): `read_model(path)` parses the model proto (it needs the
`sentencepiece` package: `pip install flaxformers[sentencepiece]`); `unigram_backend(...)` builds the
Unigram tokenizer: optional normalizers before the model's own precompiled character map, whitespace
split and the `▁` Metaspace (prepended to each word when `add_prefix_space`), and the matching decoder.
Families shape what differs as data: the vocabulary (`pieces(model)`, possibly re-ordered or extended,
e.g. fairseq's id offset), the unknown token's id, extra normalizers (lowercasing, accents) and the
post-processor.

Segmented by SentencePiece itself (transformers' Python tokenizers, e.g. two models sharing one
`vocab.json`, or BPE with byte fallback): `SentencePieceTokenizer` cuts text into pieces with
`processor(path)` (special tokens split out first) and looks them up in a WordLevel backend, which
adds the special tokens, truncates and pads as for any other tokenizer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tokenizers
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers

from flaxformers.tokenizers import Tokenizer

UNIGRAM, BPE = 1, 2  # trainer_spec.model_type
CONTROL, USER_DEFINED = 3, 4  # ModelProto.SentencePiece.type
WORD_MARK = "▁"


def _sentencepiece(path: str | os.PathLike) -> Any:
    try:
        import sentencepiece
    except ImportError as e:
        raise ImportError(f"Reading {os.fspath(path)} needs the `sentencepiece` package: "
                          "pip install 'flaxformers[sentencepiece]' (or `pip install sentencepiece`).") from e
    return sentencepiece


def processor(path: str | os.PathLike) -> Any:
    """The `sentencepiece.SentencePieceProcessor` of a model file."""
    return _sentencepiece(path).SentencePieceProcessor(model_file=os.fspath(path))


def read_model(path: str | os.PathLike) -> Any:
    """The ModelProto of a SentencePiece `.model` file."""
    _sentencepiece(path)
    from sentencepiece import sentencepiece_model_pb2

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


def added_tokens(model: Any) -> list[AddedToken]:
    """The model's control pieces (special) and user-defined pieces (not special), as transformers adds them."""
    return [AddedToken(p.piece, special=p.type == CONTROL, normalized=False)
            for p in model.pieces if p.type in (CONTROL, USER_DEFINED)]


class SentencePieceTokenizer(Tokenizer):
    """Text cut into pieces by SentencePiece, pieces looked up in the WordLevel `backend`.

    Special tokens are split out of the text first and each stretch between them is segmented on its
    own, as transformers' Python tokenizers do. Subclasses say how a stretch is segmented (`_segment`)
    and how tokens join back into text (`convert_tokens_to_string`). `files` (saved name -> path) are the
    files `save_pretrained` copies; `tokenizer_class` names the class in tokenizer_config.json.
    """

    pretokenized = True
    tokenizer_class = ""

    def __init__(self, backend: tokenizers.Tokenizer, segmenter: Any, files: Mapping[str, str], **kwargs: Any):
        super().__init__(backend, **kwargs)
        self.segmenter = segmenter
        self.files = dict(files)

    @property
    def all_special_tokens(self) -> list[str]:
        return [t.content for t in self.backend.get_added_tokens_decoder().values() if t.special]

    def _backend_input(self, text: str) -> list[str]:
        specials = sorted(set(self.all_special_tokens) | set(self.special_tokens_map.values()), key=len, reverse=True)
        pattern = "(" + "|".join(map(re.escape, specials)) + ")" if specials else None
        stretches = re.split(pattern, text) if pattern else [text]
        # re.split puts the special tokens at odd positions
        return [piece for i, stretch in enumerate(stretches) if stretch
                for piece in ([stretch] if i % 2 else self._segment(stretch))]

    def _segment(self, text: str) -> list[str]:
        return self.segmenter.encode(text, out_type=str)

    def tokenize(self, text: str) -> list[str]:
        return self._backend_input(text)

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = False) -> str:
        specials = set(self.all_special_tokens)
        tokens = [self._decode_backend().id_to_token(int(i)) for i in np.asarray(ids).reshape(-1)]
        tokens = [t if t is not None else self.unk_token for t in tokens]
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in specials]
        return self.convert_tokens_to_string(tokens)

    def _decode_backend(self) -> tokenizers.Tokenizer:
        return self.backend

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        return "".join(tokens).replace(WORD_MARK, " ").strip()

    def _save_vocabulary(self, directory: str | os.PathLike) -> dict[str, Any]:
        from flaxformers.checkpoints.io import atomic_write_bytes

        for name, path in self.files.items():
            if os.path.abspath(path) != os.path.abspath(os.path.join(directory, name)):
                with open(path, "rb") as f:
                    atomic_write_bytes(os.path.join(directory, name), f.read())
        return {"tokenizer_class": self.tokenizer_class}


def word_level_backend(vocab: Mapping[str, int], unk_token: str, specials: Sequence[str]) -> tokenizers.Tokenizer:
    """A backend that maps each piece to its id in `vocab` (unknown pieces to `unk_token`), `specials` special."""
    backend = tokenizers.Tokenizer(models.WordLevel(dict(vocab), unk_token=unk_token))
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in dict.fromkeys(specials)])
    return backend


__all__ = ["BPE", "UNIGRAM", "SentencePieceTokenizer", "added_tokens", "pieces", "processor", "read_model",
           "unigram_backend", "word_level_backend"]

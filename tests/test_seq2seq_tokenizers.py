"""Encoder-decoder tokenizers through AutoTokenizer: the ids of transformers' own tokenizers on varied text,
sources and `text_target=`, single texts and padded batches.

transformers 5 builds each tokenizer from a small vocabulary made here (SentencePiece-style Unigram pieces
for T5, Pegasus and mBART, byte-level BPE for BART) and writes its `tokenizer.json`; flaxformers loads that
directory. mBART's language codes follow `src_lang` / `tgt_lang` as transformers' do.
"""

from __future__ import annotations

import numpy as np
import pytest
import transformers

from flaxformers import AutoTokenizer

TEXTS = ["hello world", "the old world, hello!", "Héllo   wörld\tagain", "", "a b c d e f", "hello" * 7]
TARGETS = ["bonjour le monde", "world hello", "au revoir"]
WORDS = ["hello", "world", "the", "old", "again", "bonjour", "le", "monde", "au", "revoir", "a", "b", "c"]


def _pieces() -> list[tuple[str, float]]:
    """Unigram pieces: words with the SentencePiece word mark, then every character (so nothing is unknown)."""
    chars = sorted({c for w in WORDS + TEXTS + TARGETS for c in w if not c.isspace()})
    return [("▁" + w, -2.0 - i / 10) for i, w in enumerate(WORDS)] + [("▁", -3.0)] + [(c, -5.0) for c in chars]


def _bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary: the 256 byte symbols, specials, and merges that build a few words."""
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = ByteLevel.alphabet()
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", *sorted(alphabet)])}
    merges = []
    for word in ["Ġhello", "Ġworld", "hello", "Ġthe"]:
        symbol = word[0]
        for char in word[1:]:
            merges.append((symbol, char))
            symbol += char
            vocab.setdefault(symbol, len(vocab))
    vocab["<mask>"] = len(vocab)
    return vocab, merges


def _reference(kind: str, path) -> transformers.PreTrainedTokenizerBase:
    if kind == "t5":
        tokenizer = transformers.T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *_pieces()],
                                             extra_ids=3)
    elif kind == "pegasus":
        tokenizer = transformers.PegasusTokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<mask_1>", 0.0),
                                                         ("<mask_2>", 0.0), ("<unk>", 0.0), *_pieces()])
    elif kind == "bart":
        vocab, merges = _bpe()
        tokenizer = transformers.BartTokenizer(vocab=vocab, merges=merges)
    elif kind == "mbart":
        tokenizer = transformers.MBartTokenizer(vocab=[("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0),
                                                       *_pieces()], src_lang="en_XX", tgt_lang="ro_RO")
    else:
        tokenizer = transformers.MBart50Tokenizer(vocab=[("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0),
                                                         *_pieces()], src_lang="fr_XX", tgt_lang="de_DE")
    tokenizer.save_pretrained(path)
    return transformers.AutoTokenizer.from_pretrained(path)


@pytest.mark.parametrize("kind", ["t5", "pegasus", "bart", "mbart", "mbart50"])
def test_ids_equal_transformers_for_sources_and_targets(kind, tmp_path):
    reference = _reference(kind, tmp_path)
    ours = AutoTokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        assert ours.encode(text) == reference(text).input_ids, text
        assert ours.decode(ours.encode(text), skip_special_tokens=True) == reference.decode(
            reference(text).input_ids, skip_special_tokens=True)
    for target in TARGETS:
        assert ours(text_target=target, return_tensors=None)["input_ids"][0].tolist() == reference(
            text_target=target).input_ids, target
    batch = ours(TEXTS[:3], text_target=TARGETS)
    expected = reference(TEXTS[:3], text_target=TARGETS, padding=True, return_tensors="np")
    np.testing.assert_array_equal(batch["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(batch["attention_mask"], expected["attention_mask"])
    np.testing.assert_array_equal(batch["labels"], expected["labels"])
    assert ours.pad_token_id == reference.pad_token_id and ours.eos_token_id == reference.eos_token_id


@pytest.mark.parametrize("kind", ["mbart", "mbart50"])
def test_language_codes_follow_src_and_tgt_lang(kind, tmp_path):
    _reference(kind, tmp_path)
    ours = AutoTokenizer.from_pretrained(tmp_path, src_lang="ro_RO", tgt_lang="en_XX")
    reference = transformers.AutoTokenizer.from_pretrained(tmp_path, src_lang="ro_RO", tgt_lang="en_XX")
    assert ours.encode("hello world") == reference("hello world").input_ids
    assert ours(text_target="au revoir")["input_ids"][0].tolist() == reference(text_target="au revoir").input_ids
    ours.src_lang = reference.src_lang = "de_DE"
    assert ours.encode("old world") == reference("old world").input_ids
    assert ours.convert_tokens_to_ids("fr_XX") == reference.convert_tokens_to_ids("fr_XX")
    with pytest.raises(ValueError, match="not in this tokenizer's vocabulary"):
        ours.src_lang = "xx_YY"


def test_language_options_need_a_tokenizer_with_codes(tmp_path):
    _reference("t5", tmp_path)
    with pytest.raises(ValueError, match="language codes"):
        AutoTokenizer.from_pretrained(tmp_path, src_lang="en_XX")

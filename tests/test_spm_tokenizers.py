"""Checkpoints whose tokenizer is only SentencePiece files (no tokenizer.json): ids, batches, targets and decoding
through AutoTokenizer equal transformers 5's tokenizer on the same directory.

T5 / mT5 and Pegasus: `spiece.model` converted to a `tokenizers` Unigram (T5's sentinels, Pegasus' offset and
masks). Marian: `source.spm` / `target.spm` with `vocab.json` (shared, or `target_vocab.json` for targets),
and GPT-SW3: a byte-fallback BPE `spiece.model` with its text preparation; both are segmented by
SentencePiece itself, as transformers does. The models are trained here on a small corpus (a second each).
"""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
import transformers

from flaxformers.tokenizers import AutoTokenizer

TEXTS = [
    "Hello world, hello there!",
    "  leading  and   runs\tof\nspaces ",
    "Naïve café 12345 東京 ß 🤗",
    ">>de<< Der schnelle Fuchs.",
    "",
    "a</s>b <unk> <pad>x <|endoftext|><s> <mask_1> y<mask_2>",
    "<extra_id_0> fox <extra_id_1>. <unk_5>",
    "zero\u200bwidth\u00a0nbsp\u2009thin\u3000ideo\x07bell Cafe\u0301",
]
TARGETS = ["Hallo Welt, hallo da!", "Der faule Hund.", "Zahlen 12,5 und ümlauts"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Hello world, hello there!", "Naïve café and façade.",
    "Numbers like 12,345.67 appear in text.", "東京 and 北京 are cities.", "Runs of spaces and tabs.",
    "A second sentence follows the first one.", "Questions? Answers! Quotes ``like these''.",
    "Der schnelle braune Fuchs springt über den faulen Hund.", "Hallo Welt, hallo da!",
] * 30

# case -> (model_type of config.json, tokenizer_config.json or None)
CASES = {
    "t5": ("t5", None),
    "mt5-5-sentinels": ("mt5", {"tokenizer_class": "T5Tokenizer", "extra_ids": 5}),
    "pegasus": ("pegasus", None),
    "pegasus-offset-10": ("pegasus", {"tokenizer_class": "PegasusTokenizer", "offset": 10}),
    "marian": ("marian", None),
    "marian-separate-vocabs": ("marian", {"separate_vocabs": True}),
    "gpt-sw3": ("gpt2", {"tokenizer_class": "GPTSw3Tokenizer"}),
}


def _train(directory, name: str, **options) -> str:
    import sentencepiece as spm

    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(CORPUS), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(directory / name), character_coverage=1.0,
                                   minloglevel=2, **options)
    return str(directory / f"{name}.model")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """T5-style Unigram (pad 0, eos 1, unk 2), two Marian-style Unigrams (eos 0, unk 1, different vocabularies),
    and a GPT-SW3-style BPE (byte fallback, split digits, no normalization, whitespace kept)."""
    directory = tmp_path_factory.mktemp("spm")
    return {
        "unigram": _train(directory, "unigram", vocab_size=100, model_type="unigram", pad_id=0, eos_id=1, unk_id=2,
                          bos_id=-1),
        "source": _train(directory, "source", vocab_size=90, model_type="unigram", eos_id=0, unk_id=1, bos_id=-1,
                         pad_id=-1),
        "target": _train(directory, "target", vocab_size=70, model_type="unigram", eos_id=0, unk_id=1, bos_id=-1,
                         pad_id=-1),
        "bpe": _train(directory, "bpe", vocab_size=400, model_type="bpe", byte_fallback=True, split_digits=True,
                      normalization_rule_name="identity", remove_extra_whitespaces=False, pad_id=0, unk_id=1,
                      bos_id=2, eos_id=3, eos_piece="<|endoftext|>"),
    }


def _marian_vocab(*spm_files: str, seed: int) -> dict[str, int]:
    """A Marian vocab.json: the models' pieces in a shuffled order, a few left out (they become <unk>), language
    codes, `</s>` 0, `<unk>` 1 and `<pad>` last."""
    import sentencepiece as spm

    found = set()
    for file in spm_files:
        model = spm.SentencePieceProcessor(model_file=file)
        found |= {model.id_to_piece(i) for i in range(model.get_piece_size())}
    pieces = sorted(found - {"</s>", "<unk>", "<pad>"})
    random.Random(seed).shuffle(pieces)
    vocab = {"</s>": 0, "<unk>": 1, ">>de<<": 2, ">>fr<<": 3, **{p: i + 4 for i, p in enumerate(pieces[:-8])}}
    vocab["<pad>"] = len(vocab)
    return vocab


def _checkpoint(case: str, directory, models: dict[str, str]) -> str:
    model_type, tokenizer_config = CASES[case]
    if model_type == "marian":
        shutil.copy(models["source"], directory / "source.spm")
        shutil.copy(models["target"], directory / "target.spm")
        if tokenizer_config:  # separate vocabularies: each side its own pieces
            vocabs = {"vocab.json": _marian_vocab(models["source"], seed=0),
                      "target_vocab.json": _marian_vocab(models["target"], seed=1)}
        else:
            vocabs = {"vocab.json": _marian_vocab(models["source"], models["target"], seed=0)}
        for name, vocab in vocabs.items():
            (directory / name).write_text(json.dumps(vocab), encoding="utf-8")
    else:
        shutil.copy(models["bpe" if model_type == "gpt2" else "unigram"], directory / "spiece.model")
    if tokenizer_config:
        (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    return str(directory)


@pytest.fixture(scope="module")
def case(request, tmp_path_factory, models):
    path = _checkpoint(request.param, tmp_path_factory.mktemp(request.param), models)
    return request.param, transformers.AutoTokenizer.from_pretrained(path), AutoTokenizer.from_pretrained(path)


@pytest.mark.parametrize("case", list(CASES), indirect=True)
def test_ids_and_decoding_equal_transformers(case):
    name, reference, ours = case
    for text in TEXTS:
        ids = reference(text).input_ids
        assert ours.encode(text) == ids, (name, text)
        if name == "marian-separate-vocabs":
            continue  # transformers decodes with the target vocabulary only (test_targets_equal_transformers)
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip), (
                name, text, skip)
    assert ours.encode(TEXTS[0], TEXTS[1]) == reference(TEXTS[0], TEXTS[1]).input_ids
    assert ours.tokenize(TEXTS[0]) == reference.tokenize(TEXTS[0])
    got, expected = ours(TEXTS), reference(TEXTS, padding=True, return_tensors="np")
    np.testing.assert_array_equal(got["input_ids"], expected["input_ids"], err_msg=name)
    np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"], err_msg=name)
    assert len(ours) == len(reference), name
    for role in ("pad_token", "eos_token", "unk_token", "bos_token", "mask_token"):
        assert getattr(ours, f"{role}_id") == getattr(reference, f"{role}_id"), (name, role)


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][0] != "gpt2"], indirect=True)
def test_targets_equal_transformers(case):
    name, reference, ours = case
    got = ours(TEXTS[:3], text_target=TARGETS)
    expected = reference(TEXTS[:3], text_target=TARGETS, padding=True, return_tensors="np")
    np.testing.assert_array_equal(got["labels"], expected["labels"], err_msg=name)
    np.testing.assert_array_equal(got["input_ids"], expected["input_ids"], err_msg=name)
    for target in TARGETS:
        ids = reference(text_target=target).input_ids
        assert ours(text_target=target)["input_ids"][0].tolist() == ids, (name, target)
        assert ours.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True), name


@pytest.mark.parametrize("case", list(CASES), indirect=True)
def test_saved_tokenizer_reloads_in_both(case, tmp_path):
    name, reference, ours = case
    ours.save_pretrained(tmp_path)
    for reloaded in (AutoTokenizer.from_pretrained(tmp_path), transformers.AutoTokenizer.from_pretrained(tmp_path)):
        for text in TEXTS[:4]:
            assert list(reloaded.encode(text)) == reference(text).input_ids, (name, type(reloaded), text)


def test_clear_errors(tmp_path, models, monkeypatch):
    path = _checkpoint("marian", tmp_path, models)
    with pytest.raises(ValueError, match="return_offsets_mapping"):
        AutoTokenizer.from_pretrained(path)(TEXTS[:2], return_offsets_mapping=True)
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    (tmp_path / "vocab.json").write_text(json.dumps({k: v for k, v in vocab.items() if k != "<unk>"}))
    with pytest.raises(ValueError, match="unk_token="):
        AutoTokenizer.from_pretrained(path)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    monkeypatch.setitem(__import__("sys").modules, "sentencepiece", None)
    with pytest.raises(ImportError, match=r"flaxformers\[sentencepiece\]"):
        AutoTokenizer.from_pretrained(path)


def test_pegasus_masks_keep_their_order_when_named(tmp_path, models):
    """tokenizer_config.json naming both masks (as Pegasus checkpoints do): `<mask_1>` 2 and `<mask_2>` 3 as in
    transformers 4.57 and Pegasus itself (transformers 5 swaps them); every other id as transformers 5's."""
    path = _checkpoint("pegasus", tmp_path, models)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PegasusTokenizer", "mask_token": "<mask_2>", "mask_token_sent": "<mask_1>"}))
    ours, reference = AutoTokenizer.from_pretrained(path), transformers.AutoTokenizer.from_pretrained(path)
    assert ours.convert_tokens_to_ids(["<mask_1>", "<mask_2>"]) == [2, 3] and ours.mask_token_id == 3
    for text in TEXTS[:5]:
        assert ours.encode(text) == reference(text).input_ids, text

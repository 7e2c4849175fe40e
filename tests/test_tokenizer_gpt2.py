"""The GPT-2 tokenizer (tokenizers library) on the real GPT-2 vocabulary, against transformers."""

from __future__ import annotations

import numpy as np
import pytest
import transformers
from _helpers import gpt2_tokenizer_dir

from flaxformers import AutoTokenizer

TEXTS = [
    "Hello world! <|endoftext|> It's  a   test.\n\nNew line é ü 你好 🤗",
    " leading space and trailing ",
    "The capital of France is",
    "",
]


@pytest.fixture(scope="module")
def tokenizers_pair(tmp_path_factory):
    path = gpt2_tokenizer_dir(tmp_path_factory.mktemp("gpt2tok"))
    return AutoTokenizer.from_pretrained(path), transformers.GPT2TokenizerFast.from_pretrained(path), path


def test_ids_and_decode_match_transformers(tokenizers_pair):
    ours, ref, _ = tokenizers_pair
    assert ours.vocab_size == len(ref) == 50257
    assert ours.eos_token_id == ref.eos_token_id == 50256
    for text in TEXTS:
        ids = ours.encode(text)
        assert ids == ref.encode(text), text
        assert ours.decode(ids) == ref.decode(ids)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_matches_transformers(tokenizers_pair, side):
    ours, ref, _ = tokenizers_pair
    ref.pad_token = ref.eos_token
    ref.padding_side = side
    batch = ours(TEXTS[:3], padding_side=side)
    expected = ref(TEXTS[:3], padding=True, return_tensors="np")
    assert isinstance(batch["input_ids"], np.ndarray)
    np.testing.assert_array_equal(batch["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(batch["attention_mask"], expected["attention_mask"])


def test_tokenizer_json_round_trip(tokenizers_pair, tmp_path):
    ours, _, _ = tokenizers_pair
    ours.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.encode(TEXTS[0]) == ours.encode(TEXTS[0]) and again.eos_token == "<|endoftext|>"


def test_truncation_and_errors(tokenizers_pair):
    ours, _, _ = tokenizers_pair
    out = ours(["one two three four five"], truncation=True, max_length=3)
    assert out["input_ids"].shape == (1, 3)
    with pytest.raises(ValueError, match="padding_side"):
        ours(["x"], padding_side="middle")
    with pytest.raises(ValueError, match="truncation=True"):
        ours(["a b c d e f"], padding="max_length", max_length=2)
    with pytest.raises(OSError, match="no tokenizer files"):
        AutoTokenizer.from_pretrained(str(__import__("tempfile").mkdtemp()))


def test_config_special_tokens_in_plain_vocab_are_special(tmp_path):
    """tokenizer_config's bos/eos that tokenizer.json holds only as ordinary vocabulary entries are
    special tokens after loading, in transformers and here: encoded whole, dropped by skip_special_tokens."""
    import json

    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers

    vocab = {"<unk>": 0, "a": 1, "b": 2, "</s>": 3, "<s>": 4, "Ġ": 5, "Ġa": 6}
    backend = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[("Ġ", "a")], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "tokenizer_class": "PreTrainedTokenizerFast"}))
    ours, ref = AutoTokenizer.from_pretrained(tmp_path), transformers.AutoTokenizer.from_pretrained(tmp_path)
    for text in ["a</s>b", "<s>a a</s>"]:
        assert ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
    ids = [4, 1, 6, 3]
    assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True) == "a a"

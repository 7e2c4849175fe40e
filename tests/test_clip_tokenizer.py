"""CLIP's tokenizer against transformers' CLIPTokenizer on CLIP's real BPE vocabulary.

`open_clip_torch` (MIT) ships OpenAI's `bpe_simple_vocab_16e6.txt.gz`; `vocab.json` and `merges.txt` are
built from it as OpenAI's and Hugging Face's CLIP tokenizers build them (49,408 tokens), and both
tokenizers read those same files.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import transformers
from _helpers import clip_tokenizer_dir

from flaxformers.tokenizers import AutoTokenizer

TEXTS = [
    "a photo of a cat",
    "A  Photo\tOF a DOG!!",
    "it's 2024, we're here -- aren't we?",
    "naïve café résumé",
    "日本語のテキストと English",
    "<|startoftext|>hello<|endoftext|>",
    "emoji 😀 and symbols #$%&",
    "multiple    spaces\n\nand newlines",
]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return clip_tokenizer_dir(tmp_path_factory.mktemp("clip-tokenizer"))


def test_ids_equal_transformers(clip_dir):
    ours = AutoTokenizer.from_pretrained(clip_dir)  # tokenizer_class picks CLIP's files reader
    ref = transformers.CLIPTokenizer.from_pretrained(clip_dir)
    assert len(ours) == len(ref) == 49408
    for text in TEXTS:
        assert ours.encode(text) == ref(text)["input_ids"], text
    batch, expected = ours(TEXTS), ref(TEXTS, padding=True, return_tensors="np")
    np.testing.assert_array_equal(batch["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(batch["attention_mask"], expected["attention_mask"])
    assert ours.pad_token_id == ref.pad_token_id == ours.eos_token_id == 49407 and ours.bos_token_id == 49406


def test_decode_equals_transformers(clip_dir):
    ours = AutoTokenizer.from_pretrained(clip_dir)
    ref = transformers.CLIPTokenizer.from_pretrained(clip_dir)
    for text in TEXTS:
        ids = ref(text)["input_ids"]
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), text


def test_gpt2_files_alone_stay_gpt2(clip_dir, tmp_path):
    """vocab.json + merges.txt without a tokenizer_config.json or config.json mean GPT-2's tokenizer."""
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes(open(os.path.join(clip_dir, name), "rb").read())
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    assert tokenizer.bos_token == "<|endoftext|>"  # GPT-2's reader: no <|startoftext|> added

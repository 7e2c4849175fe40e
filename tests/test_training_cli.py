"""`flaxformers finetune`: learning lowers the loss (GPT-2 on text, BERT sequence classification), and a
run killed midway, then resumed, ends with the same params as an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from _helpers import gpt2_tokenizer_dir
from safetensors.numpy import load_file

import flaxformers as ff
from flaxformers.cli import main

SUBJECTS = ["the cat", "a dog", "my friend", "the old man", "a little bird", "the farmer"]
VERBS = ["sat on", "looked at", "walked to", "sang near", "slept under", "ran past"]
PLACES = ["the mat.", "the river.", "a tall tree.", "the green field.", "the small house.", "the gate."]


def _lines(n: int, seed: int) -> list[str]:
    rng = np.random.RandomState(seed)
    return [f"{SUBJECTS[rng.randint(6)]} {VERBS[rng.randint(6)]} {PLACES[rng.randint(6)]}" for _ in range(n)]


def _metrics(directory) -> list[dict]:
    with open(os.path.join(directory, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _save_random(model_cls, config, directory) -> None:
    """A randomly initialised checkpoint, drawn in numpy from the param shapes (no init to compile)."""
    model = model_cls(config, _do_init=False)
    rng = np.random.RandomState(0)
    def draw(path, s):  # norms start at one, biases at zero, weights at N(0, 0.02)
        leaf = path[-1].key
        if leaf in ("scale", "bias"):
            return (np.ones if leaf == "scale" else np.zeros)(s.shape, np.float32)
        return rng.normal(0, 0.02, s.shape).astype(np.float32)

    params = jax.tree_util.tree_map_with_path(draw, model.params_shape_tree)
    model.save_pretrained(directory, params=params)


@pytest.fixture(scope="module")
def gpt2_run(tmp_path_factory):
    """A tiny GPT-2 with the real GPT-2 tokenizer, fine-tuned for 16 steps without interruption."""
    root = tmp_path_factory.mktemp("finetune_gpt2")
    model_dir = root / "model"
    model_dir.mkdir()
    gpt2_tokenizer_dir(model_dir)
    _save_random(ff.FlaxGPT2LMHeadModel, ff.GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=4), model_dir)
    (root / "train.txt").write_text("\n".join(_lines(120, 0)) + "\n")
    (root / "eval.txt").write_text("\n".join(_lines(40, 1)) + "\n")
    args = ["finetune", "--model", str(model_dir), "--task", "causal-lm", "--train-file", str(root / "train.txt"),
            "--eval-file", str(root / "eval.txt"), "--max-length", "32", "--batch-size", "8",
            "--max-steps", "16", "--learning-rate", "1e-2", "--warmup-steps", "2", "--save-every", "5",
            "--eval-every", "8", "--seed", "1", "--quiet"]
    assert main([*args, "--output-dir", str(root / "a")]) == 0
    return root, args


def test_gpt2_finetune_lowers_the_loss(gpt2_run):
    root, _ = gpt2_run
    records = _metrics(root / "a")
    losses = [r["loss"] for r in records if "loss" in r]
    evals = [r["eval_loss"] for r in records if "eval_loss" in r]
    assert len(losses) == 16 and len(evals) == 2
    assert losses[0] > 10.0  # ln(50257) = 10.8 at random init
    assert np.mean(losses[-4:]) < losses[0] - 2.0, losses
    assert evals[1] < evals[0] < losses[0] - 1.0, evals
    assert sorted(os.listdir(root / "a" / "checkpoints")) == ["checkpoint-00000015", "checkpoint-00000016", "latest"]
    reloaded = ff.FlaxGPT2LMHeadModel.from_pretrained(root / "a")  # the saved model is a HF checkpoint
    assert reloaded.config.n_layer == 2 and os.path.exists(root / "a" / "tokenizer.json")


def test_killed_run_resumes_to_the_same_params(gpt2_run):
    root, args = gpt2_run
    out = str(root / "b")
    killed = subprocess.run([sys.executable, "-m", "flaxformers.cli", *args, "--output-dir", out, "--stop-after", "7"],
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL after step 7: steps 6 and 7 are lost
    assert open(os.path.join(out, "checkpoints", "latest")).read().strip() == "checkpoint-00000005"
    assert not os.path.exists(os.path.join(out, "model.safetensors"))
    assert main([*args, "--output-dir", out]) == 0  # the same command resumes from step 5
    resumed, uninterrupted = load_file(os.path.join(out, "model.safetensors")), load_file(
        str(root / "a" / "model.safetensors"))
    assert resumed.keys() == uninterrupted.keys()
    for name in uninterrupted:
        np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name)


def test_bert_sequence_classification_lowers_the_loss(tmp_path):
    words = {"positive": ["good", "great", "happy", "fine", "nice"], "negative": ["bad", "awful", "sad", "poor", "ugly"]}
    fillers = ["the", "day", "was", "very", "and", "film", "food", "it"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *fillers, *words["positive"], *words["negative"]]
    model_dir = tmp_path / "bert"
    model_dir.mkdir()
    (model_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = ff.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=37, max_position_embeddings=32)
    _save_random(ff.FlaxBertForSequenceClassification, config, model_dir)
    rng = np.random.RandomState(0)
    with open(tmp_path / "train.jsonl", "w") as f:
        for _ in range(64):
            label = ["positive", "negative"][rng.randint(2)]
            text = " ".join([*rng.choice(fillers, 3), rng.choice(words[label]), *rng.choice(fillers, 2)])
            f.write(json.dumps({"text": text, "label": label}) + "\n")
    out = tmp_path / "out"
    assert main(["finetune", "--model", str(model_dir), "--task", "sequence-classification", "--train-file",
                 str(tmp_path / "train.jsonl"), "--output-dir", str(out), "--max-length", "12", "--batch-size", "16",
                 "--epochs", "10", "--learning-rate", "5e-3", "--quiet"]) == 0
    losses = [r["loss"] for r in _metrics(out) if "loss" in r]
    assert len(losses) == 40
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4]), losses
    trained = ff.FlaxBertForSequenceClassification.from_pretrained(out)
    assert trained.config.id2label == {0: "negative", 1: "positive"}

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


def test_checkpoints_are_atomic_pruned_and_restored(tmp_path):
    from flaxformers.training import checkpoint as ckpt

    state = {"params": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "step": np.int32(0)}
    for step in (1, 2, 3):
        ckpt.save_train_state(tmp_path, {**state, "step": np.int32(step)}, step, keep=2)
    assert [os.path.basename(p) for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-00000002",
                                                                             "checkpoint-00000003"]
    # What a kill in the middle of a save leaves: a temporary directory and no new `latest`.
    (tmp_path / ".checkpoint-00000004.abc.tmp").mkdir()
    (tmp_path / ".checkpoint-00000004.abc.tmp" / ckpt.STATE_NAME).write_bytes(b"torn")
    assert ckpt.latest_checkpoint(tmp_path).endswith("checkpoint-00000003")
    (tmp_path / "latest").unlink()  # even without the pointer, only complete checkpoints count
    (tmp_path / "checkpoint-00000005").mkdir()
    assert ckpt.latest_checkpoint(tmp_path).endswith("checkpoint-00000003")
    restored, meta = ckpt.load_train_state(ckpt.latest_checkpoint(tmp_path), state)
    assert meta["step"] == 3 and int(restored["step"]) == 3
    np.testing.assert_array_equal(restored["params"]["w"], state["params"]["w"])
    with pytest.raises(ValueError, match="does not fit"):
        ckpt.load_train_state(ckpt.latest_checkpoint(tmp_path), {"params": {"v": np.zeros(2)}, "step": 0})


def test_task_data_builders(tmp_path):
    from flaxformers.tokenizers import AutoTokenizer
    from flaxformers.training.data import build_dataset, mask_tokens

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "who", "good", "##ness",
             "a", "dog", "bird"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    config = ff.BertConfig(vocab_size=len(vocab))
    ids = {t: i for i, t in enumerate(vocab)}

    arrays, info = build_dataset("token-classification", [{"tokens": ["the", "goodness"], "tags": ["O", "B-X"]}],
                                 tokenizer, config, 8)
    assert arrays["input_ids"][0, :5].tolist() == [ids["[CLS]"], ids["the"], ids["good"], ids["##ness"], ids["[SEP]"]]
    assert arrays["labels"][0].tolist() == [-100, 1, 0, -100, -100, -100, -100, -100]  # first sub-token only
    assert info["id2label"] == {0: "B-X", 1: "O"}

    record = {"question": "who sat", "context": "the cat sat on the mat",
              "answers": {"text": ["the mat"], "answer_start": [15]}}
    arrays, _ = build_dataset("question-answering", [record], tokenizer, config, 16)
    start, end = int(arrays["start_positions"][0]), int(arrays["end_positions"][0])
    assert arrays["input_ids"][0, start:end + 1].tolist() == [ids["the"], ids["mat"]]
    assert arrays["token_type_ids"][0, start] == 1

    arrays, _ = build_dataset("multiple-choice", [{"context": "the cat", "choices": ["sat", "a dog", "mat"],
                                                   "label": 1}], tokenizer, config, 6)
    assert arrays["input_ids"].shape == (1, 3, 6) and arrays["labels"].tolist() == [1]

    pre = [{"input_ids": [2, 5, 3], "label": 0.5}, {"input_ids": [2, 6, 7, 3], "label": -1.0}]
    arrays, info = build_dataset("sequence-classification", pre, None, config, 8)
    assert info == {"num_labels": 1, "problem_type": "regression"} and arrays["input_ids"].shape == (2, 4)
    assert arrays["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    _, info = build_dataset("sequence-classification", [{**pre[0], "label": [1, 0, 1]}], None, config, 8)
    assert info == {"num_labels": 3, "problem_type": "multi_label_classification"}
    with pytest.raises(ValueError, match="no tokenizer"):
        build_dataset("sequence-classification", [{"text": "the cat", "label": 0}], None, config, 8)

    rng = np.random.RandomState(0)
    tokens = rng.randint(5, 16, (64, 32))
    tokens[:, 0] = ids["[CLS]"]
    masked, labels = mask_tokens(tokens, rng, ids["[MASK]"], len(vocab), {ids["[CLS]"]})
    scored = labels != -100
    assert 0.1 < scored.mean() < 0.2 and not scored[:, 0].any()
    assert (labels[scored] == tokens[scored]).all() and (masked[~scored] == tokens[~scored]).all()
    assert 0.7 < (masked[scored] == ids["[MASK]"]).mean() < 0.9

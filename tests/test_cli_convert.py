"""`flaxformers convert` between formats, and bf16 checkpoints, checked against transformers."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers import FlaxGPT2LMHeadModel
from flaxformers.checkpoints import io
from flaxformers.cli import main

TINY = dict(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
IDS = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**TINY)).eval()
    path = tmp_path_factory.mktemp("src")
    model.save_pretrained(path)
    with torch.no_grad():
        return model(IDS).logits, str(path)


@pytest.mark.parametrize("fmt", ["msgpack", "bin", "safetensors"])
def test_convert_chain_loads_in_both_frameworks(reference, tmp_path, fmt):
    logits, src = reference
    assert main(["convert", src, str(tmp_path / fmt), "--to", fmt, "--max-shard-size", "30KB"]) == 0
    back = tmp_path / f"{fmt}-back"
    assert main(["convert", str(tmp_path / fmt), str(back)]) == 0
    assert_close(FlaxGPT2LMHeadModel.from_pretrained(tmp_path / fmt)(IDS.numpy()).logits, logits, what=fmt)
    ref = transformers.GPT2LMHeadModel.from_pretrained(back).eval()
    with torch.no_grad():
        assert_close(ref(IDS).logits.numpy(), logits, what=f"{fmt} -> safetensors in transformers")


def test_convert_to_bf16_and_load_bf16_checkpoint(reference, tmp_path):
    logits, src = reference
    assert main(["convert", src, str(tmp_path), "--dtype", "bfloat16"]) == 0
    state = io.read_state_dict(tmp_path)
    assert all(v.dtype.name == "bfloat16" for v in state.values())
    model = FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    assert model.params["transformer"]["wte"]["embedding"].dtype == jnp.bfloat16  # kept, as transformers does
    ref = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    with torch.no_grad():
        expected = ref(IDS).logits.numpy()
    ours = np.asarray(model(IDS.numpy(), params=model.to_fp32(model.params)).logits)
    assert_close(ours, expected, what="bf16 checkpoint, fp32 compute")


def test_convert_errors(reference, tmp_path, capsys):
    _, src = reference
    assert main(["convert", src, src]) == 2
    assert "output must differ" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert not os.path.exists(tmp_path / "out")

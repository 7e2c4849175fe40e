"""One checkpoint, two frameworks: the Flax GPT-2 and the PyTorch twin convert into each other with equal
outputs; and OpenAI's TensorFlow variable names map onto the twin."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers.torch as ft
from flaxformers import FlaxGPT2LMHeadModel, FlaxGPT2Model

TINY = dict(vocab_size=97, n_positions=48, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)
FLAX_ATOL = 1e-5  # fp32 XLA vs torch kernels on 2 layers

@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: torch's thread pool costs more than it gives, badly so on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



@pytest.fixture(scope="module", params=["tied", "untied"])
def twin(request, tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.GPT2Config(**TINY, tie_word_embeddings=request.param == "tied")
    ref = transformers.GPT2LMHeadModel(config).eval()
    path = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(path)
    return ref, ft.GPT2LMHeadModel.from_pretrained(path), path


def _ids():
    ids = np.random.RandomState(0).randint(0, TINY["vocab_size"], (2, 10)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, :3] = 0
    return ids, mask


def _positions(mask):
    return np.maximum(mask.cumsum(-1) - 1, 0)  # left padding: real tokens start at position 0


def _torch_logits(model, ids, mask):
    with torch.no_grad():
        return model(torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask),
                     position_ids=torch.from_numpy(_positions(mask)).long()).logits


def _flax_logits(model, ids, mask, params=None):
    return np.asarray(model(ids, attention_mask=mask, position_ids=_positions(mask), params=params).logits)


def test_flax_and_torch_convert_both_ways_with_equal_outputs(twin):
    _, ours, _ = twin
    ids, mask = _ids()
    real = mask.astype(bool)  # padded queries attend to nothing real; their outputs are arbitrary
    expected = _torch_logits(ours, ids, mask).numpy()
    flax_model = ft.flax_from_torch(ours)
    assert isinstance(flax_model, FlaxGPT2LMHeadModel)
    assert_close(_flax_logits(flax_model, ids, mask)[real], expected[real], FLAX_ATOL, "torch -> flax")
    back = ft.torch_from_flax(flax_model)
    assert isinstance(back, ft.GPT2LMHeadModel)
    for name, tensor in ours.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name
    base = ft.torch_from_flax(FlaxGPT2Model(ours.config, _do_init=False), params=flax_model.params["transformer"])
    assert isinstance(base, ft.GPT2Model)
    assert torch.equal(base.wte.weight, ours.transformer.wte.weight)


def test_one_checkpoint_directory_serves_both_twins(twin, tmp_path):
    ref, ours, path = twin
    ids, mask = _ids()
    real = mask.astype(bool)
    expected = _torch_logits(ref, ids, mask).numpy()
    flax_model = FlaxGPT2LMHeadModel.from_pretrained(path)  # transformers' checkpoint
    assert_close(_flax_logits(flax_model, ids, mask)[real], expected[real], FLAX_ATOL, "flax from transformers")
    ours.save_pretrained(tmp_path / "torch")  # the torch twin's checkpoint, read by the Flax twin
    from_ours = FlaxGPT2LMHeadModel.from_pretrained(tmp_path / "torch")
    assert_close(_flax_logits(from_ours, ids, mask)[real], expected[real], FLAX_ATOL, "flax from torch twin")
    for safe in (True, False):  # the Flax twin's safetensors and msgpack, read by the torch twin
        directory = tmp_path / f"flax-{safe}"
        flax_model.save_pretrained(directory, safe_serialization=safe)
        reloaded = ft.GPT2LMHeadModel.from_pretrained(directory)
        assert_close(_torch_logits(reloaded, ids, mask), expected, 1e-6, f"torch from flax (safetensors={safe})")


def _tf_variables(model: transformers.GPT2Model) -> list[tuple[str, np.ndarray]]:
    """What OpenAI's model.ckpt holds: model/hN/... names, conv kernels stored as [1, in, out]."""
    out = []
    for name, tensor in model.state_dict().items():
        parts = name.split(".")
        array = tensor.numpy().copy()
        if parts[0] == "h":
            parts = [f"h{parts[1]}", *parts[2:]]
        leaf = parts[-1]
        if parts[0] in ("wte", "wpe"):
            parts = parts[:1]
        elif leaf == "weight" and parts[-2].startswith("ln"):
            parts[-1] = "g"
        elif leaf == "weight":
            parts[-1], array = "w", array[None]
        else:
            parts[-1] = "b"
        out.append(("model/" + "/".join(parts), array))
    return out


def test_tf_checkpoint_name_mapping():
    torch.manual_seed(2)
    ref = transformers.GPT2Model(transformers.GPT2Config(**TINY)).eval()
    variables = _tf_variables(ref)
    assert ("model/h1/attn/c_attn/w", (1, 32, 96)) in [(n, a.shape) for n, a in variables]
    assert ft.tf_checkpoint.tf_name_to_state_name("model/h11/mlp/c_fc/w") == "h.11.mlp.c_fc.weight"
    assert ft.tf_checkpoint.tf_name_to_state_name("model/ln_f/g") == "ln_f.weight"
    assert ft.tf_checkpoint.tf_name_to_state_name("model/wpe") == "wpe.weight"
    ours = ft.GPT2LMHeadModel(ft.GPT2Config(**TINY)).eval()
    ft.load_tf_variables_in_gpt2(ours, variables)
    assert ours.lm_head.weight is ours.transformer.wte.weight
    ids = torch.from_numpy(_ids()[0]).long()
    with torch.no_grad():
        assert_close(ours.transformer(ids).last_hidden_state, ref(ids).last_hidden_state, 1e-6, "TF names")
    with pytest.raises(ValueError, match="Unknown TensorFlow GPT-2 variable"):
        ft.tf_checkpoint.tf_name_to_state_name("model/h0/attn/c_attn/kernel")
    with pytest.raises(ValueError, match="has no variables for"):
        ft.load_tf_variables_in_gpt2(ours, variables[:-1])
    with pytest.raises(ValueError, match="check n_embd"):
        ft.load_tf_variables_in_gpt2(ours, [(n, a[..., :1]) if n.endswith("c_fc/w") else (n, a) for n, a in variables])


def test_tf_loader_without_tensorflow_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if it were not installed
    model = ft.GPT2Model(ft.GPT2Config(**TINY))
    with pytest.raises(ImportError, match="pip install tensorflow"):
        ft.load_tf_weights_in_gpt2(model, model.config, tmp_path / "model.ckpt")

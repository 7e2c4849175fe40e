"""The PyTorch twin's model parallelism: transformers 4.x's parallelize()/deparallelize() and
from_pretrained(device_map=...) through accelerate. On this CPU machine every map points at the CPU
(under two spellings, so activations do cross from one map entry to the next); outputs must not change.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers.torch as ft

TINY = dict(vocab_size=97, n_positions=48, n_embd=32, n_layer=4, n_head=4, bos_token_id=0, eos_token_id=0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gpt2")
    transformers.GPT2LMHeadModel(transformers.GPT2Config(**TINY)).save_pretrained(path)
    return str(path)


IDS = torch.tensor([[5, 17, 33, 2, 9, 40], [1, 2, 3, 4, 5, 6]])


@pytest.mark.parametrize("cls", [ft.GPT2LMHeadModel, ft.GPT2Model, ft.GPT2DoubleHeadsModel])
def test_parallelize_keeps_outputs_and_moves_back(saved, cls):
    model = cls.from_pretrained(saved)
    with torch.no_grad():
        expected = model(IDS)[0]
        with pytest.warns(FutureWarning, match="device_map"):
            model.parallelize({"cpu": [0, 1], torch.device("cpu"): [2, 3]})
        assert model.model_parallel and model.device_map is not None
        assert_close(model(IDS)[0], expected, atol=0, what="parallelized")
        with pytest.warns(FutureWarning):
            model.deparallelize()
        assert not model.model_parallel and model.device_map is None
        assert_close(model(IDS)[0], expected, atol=0, what="deparallelized")


def test_default_map_is_balanced_over_the_devices(saved):
    model = ft.GPT2Model.from_pretrained(saved)
    with pytest.warns(FutureWarning):
        model.parallelize()
    devices = list(range(torch.cuda.device_count())) or ["cpu"]
    assert model.device_map == ft.modeling_gpt2.balanced_device_map(4, devices)
    assert str(model.first_device) == str(model.last_device) == ("cpu" if devices == ["cpu"] else model.first_device)
    assert ft.modeling_gpt2.balanced_device_map(5, [0, 1]) == {0: [0, 1, 2], 1: [3, 4]}  # transformers 4.x's split


def test_parallelized_generate_equals_plain(saved):
    model = ft.GPT2LMHeadModel.from_pretrained(saved)
    expected = model.generate(IDS, max_new_tokens=6, do_sample=False)
    with pytest.warns(FutureWarning):
        model.parallelize({"cpu": [0, 1, 2], torch.device("cpu"): [3]})
    assert torch.equal(model.generate(IDS, max_new_tokens=6, do_sample=False), expected)


@pytest.mark.parametrize("device_map, match", [
    ({"cpu": [0, 1, 2]}, r"on no device: \[3\]"),
    ({"cpu": [0, 1, 2, 3], torch.device("cpu"): [3]}, r"on more than one device: \[3\]"),
    ({"cpu": [0, 1, 2, 3, 4]}, r"that do not exist: \[4\]"),
])
def test_bad_device_maps_are_refused(saved, device_map, match):
    model = ft.GPT2Model.from_pretrained(saved)
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match=match):
        model.parallelize(device_map)


@pytest.mark.parametrize("device_map", ["auto", "balanced", "sequential", "cpu",
                                        {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.h": "cpu",
                                         "transformer.ln_f": "cpu", "lm_head": "cpu"}])
def test_from_pretrained_device_map(saved, device_map):
    plain = ft.GPT2LMHeadModel.from_pretrained(saved)
    mapped = ft.GPT2LMHeadModel.from_pretrained(saved, device_map=device_map)
    assert mapped.hf_device_map
    with torch.no_grad():
        assert_close(mapped(IDS).logits, plain(IDS).logits, atol=0, what=f"device_map={device_map!r}")

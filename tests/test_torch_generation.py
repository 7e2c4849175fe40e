"""flaxformers.torch generate: the same tokens as transformers 5.x generate on the same weights."""

from __future__ import annotations

import pytest
import torch
import transformers

import flaxformers.torch as ft

TINY = dict(vocab_size=97, n_positions=48, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)

@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: torch's thread pool costs more than it gives, badly so on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(0)
    ref = transformers.GPT2LMHeadModel(transformers.GPT2Config(**TINY)).eval()
    # Sharper logits than random init gives, so that sampling and beams have real choices to make.
    with torch.no_grad():
        ref.transformer.wte.weight.mul_(8)
    path = tmp_path_factory.mktemp("gen")
    ref.save_pretrained(path)
    ours = ft.GPT2LMHeadModel.from_pretrained(path)
    return ref, ours


@pytest.fixture(scope="module")
def prompt():
    """Two prompts, the second left-padded (pad = eos = 0)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(2, TINY["vocab_size"], (2, 6), generator=g)
    mask = torch.ones_like(ids)
    ids[1, :2], mask[1, :2] = 0, 0
    return ids, mask


def _both(pair, prompt, seed=None, **kwargs):
    ref, ours = pair
    ids, mask = prompt
    outs = []
    for model in (ref, ours):
        if seed is not None:
            torch.manual_seed(seed)
        outs.append(model.generate(ids, attention_mask=mask, pad_token_id=0, **kwargs))
    return outs


def _eos_hit(generated: torch.Tensor, prompt) -> int:
    """A token that a run emitted mid-way, to use as EOS so that rows finish early."""
    return int(generated[0, prompt[0].shape[1] + 2])


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_greedy_same_tokens(pair, prompt, impl):
    for model in pair:
        model.set_attn_implementation(impl)
    expected, ours = _both(pair, prompt, max_new_tokens=10, eos_token_id=None)
    assert torch.equal(ours, expected)
    eos = _eos_hit(expected, prompt)
    free = expected
    expected, ours = _both(pair, prompt, max_new_tokens=10, eos_token_id=eos)
    assert not torch.equal(expected, free) and torch.equal(ours, expected)  # rows stopped at EOS
    expected, ours = _both(pair, prompt, max_new_tokens=8, repetition_penalty=1.5, min_new_tokens=4)
    assert torch.equal(ours, expected)


def test_sampling_same_tokens(pair, prompt):
    for settings in (dict(temperature=0.7, top_k=20, top_p=0.9), dict(min_p=0.05, num_return_sequences=2)):
        expected, ours = _both(pair, prompt, seed=3, max_new_tokens=10, do_sample=True, **settings)
        assert torch.equal(ours, expected), settings


@pytest.mark.parametrize("settings", [
    dict(num_beams=3, num_return_sequences=2),
    dict(num_beams=4, length_penalty=0.5, early_stopping=True),
    dict(num_beams=3, early_stopping="never", length_penalty=2.0),
])
def test_beam_search_same_tokens(pair, prompt, settings):
    expected, ours = _both(pair, prompt, max_new_tokens=9, eos_token_id=None, **settings)
    assert torch.equal(ours, expected)
    eos, free = _eos_hit(expected, prompt), expected
    expected, ours = _both(pair, prompt, max_new_tokens=9, eos_token_id=eos, **settings)
    assert not torch.equal(expected, free) and torch.equal(ours, expected)


def test_generate_without_cache_and_bad_settings(pair, prompt):
    _, ours = pair
    ids, mask = prompt
    cached = ours.generate(ids, attention_mask=mask, max_new_tokens=6)
    assert torch.equal(ours.generate(ids, attention_mask=mask, max_new_tokens=6, use_cache=False), cached)
    with pytest.raises(NotImplementedError, match="no_repeat_ngram_size"):
        ours.generate(ids, no_repeat_ngram_size=2)
    with pytest.raises(TypeError, match="unknown arguments"):
        ours.generate(ids, not_a_setting=1)
    with pytest.raises(ValueError, match="nothing to generate"):
        ours.generate(ids, max_length=4)

"""GPT-2: what is its own (cross-attention, bf16, dropout, input errors). Parity, cache, padding,
checkpoints and generate go through the causal-LM harness (test_causal_lm.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers import FlaxGPT2LMHeadModel

TINY = dict(vocab_size=97, n_positions=48, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)


def _reference(tmp_path_factory, name: str, **overrides):
    torch.manual_seed(0)
    config = transformers.GPT2Config(**{**TINY, **overrides})
    model = transformers.GPT2LMHeadModel(config).eval()
    path = tmp_path_factory.mktemp(name)
    model.save_pretrained(path)
    return model, str(path)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ref, path = _reference(tmp_path_factory, "plain")
    ref.config._attn_implementation = "eager"
    return ref, FlaxGPT2LMHeadModel.from_pretrained(path), path


def _inputs(batch=2, seq=11, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, TINY["vocab_size"], (batch, seq)).astype(np.int32)


def test_cross_attention_matches(tmp_path):
    torch.manual_seed(1)
    config = transformers.GPT2Config(**TINY, add_cross_attention=True, scale_attn_by_inverse_layer_idx=True)
    ref = transformers.GPT2LMHeadModel(config).eval()
    ref.config._attn_implementation = "eager"
    ref.save_pretrained(tmp_path)
    ours = FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    ids = _inputs(2, 6)
    enc = np.random.RandomState(3).randn(2, 5, TINY["n_embd"]).astype(np.float32)
    enc_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)
    with torch.no_grad():
        expected = ref(torch.tensor(ids, dtype=torch.long), encoder_hidden_states=torch.tensor(enc),
                       encoder_attention_mask=torch.tensor(enc_mask), output_attentions=True)
    out = ours(ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, output_attentions=True)
    assert_close(out.logits, expected.logits, what="cross-attention logits")
    for a, b in zip(out.cross_attentions, expected.cross_attentions):
        assert_close(a, b, what="cross attentions")


def test_bf16_path(pair):
    ref, ours, _ = pair
    ids = _inputs(2, 10)
    bf16 = FlaxGPT2LMHeadModel(ours.config, dtype=jnp.bfloat16, _do_init=False)
    params = ours.to_bf16(ours.params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree_util.tree_leaves(params))
    logits = np.asarray(bf16(ids, params=params).logits, dtype=np.float32)
    with torch.no_grad():
        expected = ref(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    # bf16 keeps 8 mantissa bits (relative step 2**-8 ~ 0.4%); over 2 layers of 32-wide sums the
    # error stays within a few percent of the logit scale.
    scale = np.abs(expected).max()
    assert np.abs(logits - expected).max() <= 0.05 * scale
    assert (logits.argmax(-1) == expected.argmax(-1)).mean() > 0.9


def test_dropout_train_mode_is_random_and_deterministic_per_key(pair):
    _, ours, _ = pair
    ids = _inputs(1, 8)
    a = ours(ids, train=True, dropout_rng=jax.random.PRNGKey(0)).logits
    b = ours(ids, train=True, dropout_rng=jax.random.PRNGKey(0)).logits
    c = ours(ids, train=True, dropout_rng=jax.random.PRNGKey(1)).logits
    np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(a) - np.asarray(c)).max() > 0


def test_token_ids_out_of_range_error(pair):
    _, ours, _ = pair
    with pytest.raises(ValueError, match="vocab_size=97"):
        ours(np.array([[1, 2, 97]]))


def test_sequence_longer_than_positions_error(pair):
    _, ours, _ = pair
    with pytest.raises(ValueError, match="max_position_embeddings=48"):
        ours(np.zeros((1, 49), np.int32))


def test_cross_attention_without_config_errors(pair):
    _, ours, _ = pair
    with pytest.raises(ValueError, match="add_cross_attention"):
        ours(_inputs(1, 3), encoder_hidden_states=np.zeros((1, 2, TINY["n_embd"]), np.float32))


def test_attention_mask_shape_error(pair):
    """A mask that covers neither the input nor the cache is named, with the shape it needs."""
    _, ours, _ = pair
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 2\), expected \(1, 3\)"):
        ours(_inputs(1, 3), attention_mask=np.ones((1, 2), np.int32))
    cache = ours.init_cache(1, 8)
    with pytest.raises(ValueError, match=r"expected \(1, 8\).*covers the whole cache"):
        ours(_inputs(1, 3), attention_mask=np.ones((1, 3), np.int32), past_key_values=cache,
             position_ids=np.arange(3)[None])
    with pytest.raises(ValueError, match="holds no `cached_key`"):
        ours(_inputs(1, 3), past_key_values={"h": {}}, position_ids=np.arange(3)[None])


def test_gpt_sw3_checkpoints_load_into_the_gpt2_classes(pair, tmp_path):
    """`model_type: gpt-sw3` (GPT-SW3's config.json) is GPT-2, in the Auto classes as in transformers."""
    import json
    import shutil

    from flaxformers import AutoConfig, FlaxAutoModel, FlaxAutoModelForCausalLM, FlaxGPT2Model, GPT2Config

    ref, _, path = pair
    shutil.copytree(path, tmp_path / "sw3")
    config = json.loads((tmp_path / "sw3" / "config.json").read_text())
    (tmp_path / "sw3" / "config.json").write_text(json.dumps({**config, "model_type": "gpt-sw3"}))
    assert type(AutoConfig.from_pretrained(tmp_path / "sw3")) is GPT2Config
    ours = FlaxAutoModelForCausalLM.from_pretrained(tmp_path / "sw3")
    assert type(ours) is FlaxGPT2LMHeadModel and type(FlaxAutoModel.from_pretrained(tmp_path / "sw3")) is FlaxGPT2Model
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "sw3").eval()
    assert type(theirs) is transformers.GPT2LMHeadModel
    ids = _inputs()
    with torch.no_grad():
        expected = theirs(torch.tensor(ids)).logits
    assert_close(ours(ids).logits, expected, what="gpt-sw3 logits")

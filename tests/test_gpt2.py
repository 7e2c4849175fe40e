"""FlaxGPT2Model / FlaxGPT2LMHeadModel against transformers' PyTorch GPT-2 on the same random weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers import FlaxGPT2LMHeadModel, FlaxGPT2Model

TINY = dict(vocab_size=97, n_positions=48, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)
VARIANTS = {
    "plain": {},
    "inverse_layer_idx": {"scale_attn_by_inverse_layer_idx": True, "activation_function": "gelu"},
    "unscaled": {"scale_attn_weights": False, "n_inner": 40},
    "untied": {"tie_word_embeddings": False},
}


def _reference(tmp_path_factory, name: str, **overrides):
    torch.manual_seed(0)
    config = transformers.GPT2Config(**{**TINY, **overrides})
    model = transformers.GPT2LMHeadModel(config).eval()
    path = tmp_path_factory.mktemp(name)
    model.save_pretrained(path)
    return model, str(path)


@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request, tmp_path_factory):
    ref, path = _reference(tmp_path_factory, request.param, **VARIANTS[request.param])
    ref.config._attn_implementation = "eager"
    return ref, FlaxGPT2LMHeadModel.from_pretrained(path), path


def _inputs(batch=2, seq=11, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, TINY["vocab_size"], (batch, seq)).astype(np.int32)


def test_logits_hidden_states_attentions_match(pair):
    ref, ours, _ = pair
    ids = _inputs()
    with torch.no_grad():
        expected = ref(torch.tensor(ids, dtype=torch.long), output_hidden_states=True, output_attentions=True)
    out = ours(ids, output_hidden_states=True, output_attentions=True)
    assert_close(out.logits, expected.logits, what="logits")
    assert len(out.hidden_states) == len(expected.hidden_states) == TINY["n_layer"] + 1
    for i, (a, b) in enumerate(zip(out.hidden_states, expected.hidden_states)):
        assert_close(a, b, what=f"hidden_states[{i}]")
    assert len(out.attentions) == TINY["n_layer"]
    for i, (a, b) in enumerate(zip(out.attentions, expected.attentions)):
        assert_close(a, b, what=f"attentions[{i}]")


def test_return_tuple_and_base_model(pair):
    ref, ours, path = pair
    ids = _inputs(1, 7)
    as_tuple = ours(ids, return_dict=False)
    assert isinstance(as_tuple, tuple)
    np.testing.assert_array_equal(as_tuple[0], ours(ids).logits)
    base = FlaxGPT2Model.from_pretrained(path)  # head checkpoint into the base model: prefix stripped
    with torch.no_grad():
        expected = ref.transformer(torch.tensor(ids, dtype=torch.long)).last_hidden_state
    assert_close(base(ids).last_hidden_state, expected, what="base last_hidden_state")


def test_cached_decoding_equals_full_forward(pair):
    _, ours, _ = pair
    ids = _inputs(2, 9, seed=1)
    full = np.asarray(ours(ids).logits)
    max_len = 12
    cache = ours.init_cache(2, max_len)
    mask = np.ones((2, max_len), dtype=np.int32)
    prompt = 4
    out = ours(ids[:, :prompt], attention_mask=mask, past_key_values=cache,
               position_ids=np.broadcast_to(np.arange(prompt), (2, prompt)))
    steps = [np.asarray(out.logits)]
    cache = out.past_key_values
    for t in range(prompt, ids.shape[1]):
        out = ours(ids[:, t:t + 1], attention_mask=mask, past_key_values=cache, position_ids=np.full((2, 1), t))
        cache = out.past_key_values
        steps.append(np.asarray(out.logits))
    assert_close(np.concatenate(steps, axis=1), full, what="cached vs full")
    assert int(cache["transformer"]["h"]["0"]["attn"]["cache_index"]) == ids.shape[1]


def test_left_padded_batch_equals_rows_alone(pair):
    _, ours, _ = pair
    lengths = [9, 5, 2]
    rows = [_inputs(1, n, seed=10 + i)[0] for i, n in enumerate(lengths)]
    width = max(lengths)
    ids = np.zeros((3, width), np.int32)
    mask = np.zeros((3, width), np.int32)
    for i, row in enumerate(rows):
        ids[i, width - len(row):], mask[i, width - len(row):] = row, 1
    positions = np.maximum(mask.cumsum(-1) - 1, 0)
    batched = np.asarray(ours(ids, attention_mask=mask, position_ids=positions).logits)
    for i, row in enumerate(rows):
        alone = np.asarray(ours(row[None]).logits)[0]
        assert_close(batched[i, width - len(row):], alone, what=f"row {i}")


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


def test_save_then_load_in_transformers(pair, tmp_path):
    _, ours, _ = pair
    ours.save_pretrained(tmp_path)
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, output_loading_info=True)
    ref, info = reloaded
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    ids = _inputs(2, 8)
    with torch.no_grad():
        expected = ref.eval()(torch.tensor(ids, dtype=torch.long)).logits
    assert_close(ours(ids).logits, expected, what="transformers reload")


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

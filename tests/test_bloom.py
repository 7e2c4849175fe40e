"""BLOOM: what is its own (ALiBi under left padding while decoding, base checkpoints, config aliases,
the 4.x decode hooks). Parity, cache, checkpoints and generate go through the causal-LM harness
(test_causal_lm.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers.models.bloom import BloomConfig, FlaxBloomForCausalLM, FlaxBloomModel
from flaxformers.outputs import FlaxCausalLMOutput

VOCAB = 101
# 3 and 6 heads are not powers of two: ALiBi interleaves a second slope series for the extra heads.
VARIANTS = {
    "heads3_tied": dict(n_head=3),
    "heads4_post_ln_residual": dict(n_head=4, apply_residual_connection_post_layernorm=True),
    "heads6_untied": dict(n_head=6, tie_word_embeddings=False),
}
# Every call below uses inputs of shape [2, 9] (or [2, 5] / [2, 1] into a 9-long cache): JAX compiles
# each op once per shape, so sharing shapes keeps the module fast.
BATCH, WIDTH, PROMPT = 2, 9, 5


def _reference(tmp_path_factory, name: str, **overrides):
    torch.manual_seed(0)
    config = transformers.BloomConfig(vocab_size=VOCAB, hidden_size=48, n_layer=2, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                                      **overrides)
    model = transformers.BloomForCausalLM(config).eval()
    with torch.no_grad():  # random LayerNorm weights, so a scale or bias mix-up cannot pass
        for name_, p in model.named_parameters():
            if "layernorm" in name_ or "ln_f" in name_:
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path_factory.mktemp(name)
    model.save_pretrained(path)
    ref = transformers.BloomForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    return ref, str(path)


@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request, tmp_path_factory):
    ref, path = _reference(tmp_path_factory, request.param, **VARIANTS[request.param])
    return request.param, ref, FlaxBloomForCausalLM.from_pretrained(path), path


def _ids(batch=BATCH, seq=WIDTH, seed=0):
    return np.random.RandomState(seed).randint(3, VOCAB, (batch, seq)).astype(np.int32)


def _torch(x):
    return torch.tensor(np.asarray(x), dtype=torch.long)


def test_left_padded_batch_matches_reference_and_rows_alone(pair):
    name, ref, ours, _ = pair
    lengths = [WIDTH, 3]
    width = WIDTH
    rows = [_ids(1, n, seed=10 + i)[0] for i, n in enumerate(lengths)]
    ids = np.zeros((BATCH, width), np.int32)
    mask = np.zeros((BATCH, width), np.int32)
    for i, row in enumerate(rows):
        ids[i, width - len(row):], mask[i, width - len(row):] = row, 1
    out = ours(ids, attention_mask=mask, output_attentions=True)
    with torch.no_grad():
        expected = ref(_torch(ids), attention_mask=_torch(mask), output_attentions=True)
    for i, row in enumerate(rows):
        real = slice(width - len(row), width)
        assert_close(out.logits[i, real], expected.logits[i, real], what=f"row {i}")
        for a, b in zip(out.attentions, expected.attentions):  # real queries, every key (padding gets 0)
            assert_close(a[i, :, real], b[i, :, real], what=f"row {i} attentions")
        with torch.no_grad():  # the row alone, no padding (the reference and ours agree on that above)
            alone = ref(_torch(row[None])).logits[0]
        assert_close(out.logits[i, real], alone, what=f"row {i} batched vs alone")


_STEP_FNS: dict[int, object] = {}


def _step_fn(ours):
    """`ours(...)` with a cache, jitted once per model: one compile beats op-by-op dispatch of each shape."""
    if id(ours) not in _STEP_FNS:
        def step(params, ids, mask, cache):
            out = ours(ids, attention_mask=mask, past_key_values=cache, params=params)
            return out.logits, out.past_key_values

        _STEP_FNS[id(ours)] = jax.jit(step)
    return _STEP_FNS[id(ours)]


def _decode(ours, ids, mask, prompt):
    """Feed `ids[:, :prompt]` and then one token at a time through a static cache covering all of `ids`."""
    batch, total = ids.shape
    step = _step_fn(ours)
    logits, cache = step(ours.params, ids[:, :prompt], mask, ours.init_cache(batch, total))
    steps = [np.asarray(logits)]
    for t in range(prompt, total):
        logits, cache = step(ours.params, ids[:, t:t + 1], mask, cache)
        steps.append(np.asarray(logits))
    return np.concatenate(steps, axis=1), cache


def test_cached_decoding_under_left_padding_equals_rows_alone(pair):
    """With a cache the mask covers the whole cache, so ALiBi counts real tokens only while decoding too."""
    name, ref, ours, _ = pair
    lengths = [PROMPT, 2]  # prompt lengths, left-padded to PROMPT; the rest is decoded one token at a time
    new = WIDTH - PROMPT
    width = PROMPT
    seqs = [_ids(1, n + new, seed=20 + i)[0] for i, n in enumerate(lengths)]
    ids = np.zeros((BATCH, WIDTH), np.int32)
    mask = np.zeros((BATCH, WIDTH), np.int32)
    for i, (n, seq) in enumerate(zip(lengths, seqs)):
        ids[i, width - n:], mask[i, width - n:] = seq, 1
    stepped, _ = _decode(ours, ids, mask, prompt=width)
    for i, (n, seq) in enumerate(zip(lengths, seqs)):
        with torch.no_grad():
            alone = ref(_torch(seq[None])).logits[0]
        assert_close(stepped[i, width - n:], alone, what=f"row {i}")


def test_base_checkpoint_loads_into_causal_lm(tmp_path):
    """Hub BLOOM checkpoints (bigscience/bloom-560m) are BloomModel saves: no `transformer.` prefix, tied head."""
    torch.manual_seed(1)
    ref = transformers.BloomModel(transformers.BloomConfig(vocab_size=VOCAB, hidden_size=48, n_layer=2, n_head=4))
    ref.eval().save_pretrained(tmp_path)
    ours = FlaxBloomForCausalLM.from_pretrained(tmp_path)
    assert not ours.loading_report.missing and not ours.loading_report.unexpected
    ids = _ids()
    with torch.no_grad():
        hidden = ref(_torch(ids)).last_hidden_state
        expected = hidden @ ref.word_embeddings.weight.T
    assert_close(ours(ids).logits, expected, what="tied head over a base checkpoint")


def test_config_aliases_and_round_trip(tmp_path):
    config = BloomConfig(n_embed=40, num_hidden_layers=3, num_attention_heads=5, slow_but_exact=True,
                         pretraining_tp=2, some_future_key="kept")
    assert (config.hidden_size, config.n_layer, config.n_head) == (40, 3, 5)
    assert (config.n_embed, config.num_hidden_layers, config.num_attention_heads) == (40, 3, 5)
    config.num_attention_heads = 8
    assert config.n_head == 8
    config.save_pretrained(tmp_path)
    theirs = transformers.BloomConfig.from_pretrained(tmp_path)
    assert (theirs.hidden_size, theirs.n_layer, theirs.n_head) == (40, 3, 8)
    assert theirs.slow_but_exact is True and theirs.pretraining_tp == 2
    again = BloomConfig.from_pretrained(tmp_path)
    assert again == config and again.some_future_key == "kept"
    # A transformers-written config.json reads back with the same values.
    transformers.BloomConfig(hidden_size=64, n_head=16, layer_norm_epsilon=1e-6).save_pretrained(tmp_path)
    ours = BloomConfig.from_pretrained(tmp_path)
    assert (ours.hidden_size, ours.n_head, ours.layer_norm_epsilon, ours.vocab_size) == (64, 16, 1e-6, 250880)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=30, n_head=4), "hidden_size=30 must be divisible by n_head=4"),
        (dict(n_head=0), "n_head=0 must be a positive integer"),
        (dict(n_layer=-1), "n_layer=-1 must be a positive integer"),
        (dict(layer_norm_epsilon=0.0), "layer_norm_epsilon=0.0 must be > 0"),
        (dict(hidden_dropout=1.0), r"hidden_dropout=1.0 must be in \[0, 1\)"),
        (dict(pretraining_tp=0), "pretraining_tp=0 must be an integer >= 1"),
    ],
)
def test_bad_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BloomConfig(**kwargs)


def test_wrong_model_type_errors(tmp_path):
    transformers.GPT2Config(n_embd=32, n_layer=1, n_head=4).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        BloomConfig.from_pretrained(tmp_path)


def test_bad_inputs_error(pair):
    _, _, ours, _ = pair
    with pytest.raises(ValueError, match=f"vocab_size={VOCAB}"):
        ours(np.array([[1, 2, VOCAB]]))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 2\).*\(1, 3\)"):
        ours(np.array([[1, 2, 3]]), attention_mask=np.ones((1, 2), np.int32))
    cache = ours.init_cache(1, 8)
    with pytest.raises(ValueError, match="covers the whole cache"):
        ours(np.array([[1, 2, 3]]), attention_mask=np.ones((1, 3), np.int32), past_key_values=cache)


def test_module_accepts_engine_keywords(pair):
    """The generation engine calls every causal LM module with these keywords; position_ids is ignored."""
    _, _, ours, _ = pair
    ids = _ids(seed=5)
    mask = np.ones_like(ids)
    out = ours.module.apply(
        {"params": ours.params}, input_ids=ids, attention_mask=mask, position_ids=np.arange(WIDTH)[None] + 7,
        deterministic=True, init_cache=False, output_attentions=False, output_hidden_states=False, return_dict=True,
    )
    np.testing.assert_array_equal(out.logits, ours(ids).logits)
    assert FlaxBloomForCausalLM.can_generate() and not FlaxBloomModel.can_generate()


@pytest.mark.parametrize("pair", ["heads6_untied"], indirect=True)
def test_bf16_path(pair):
    _, ref, ours, _ = pair
    ids = _ids(seed=6)
    bf16 = FlaxBloomForCausalLM(ours.config, dtype=jnp.bfloat16, _do_init=False)
    params = ours.to_bf16(ours.params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree_util.tree_leaves(params))
    logits = np.asarray(bf16(ids, params=params).logits, dtype=np.float32)
    with torch.no_grad():
        expected = ref(_torch(ids)).logits.numpy()
    # bf16 keeps 8 mantissa bits (relative step 2**-8): over 2 layers the error stays within a few
    # percent of the logit scale, and the ranking of the top token mostly survives.
    assert np.abs(logits - expected).max() <= 0.05 * np.abs(expected).max()
    assert (logits.argmax(-1) == expected.argmax(-1)).mean() > 0.8


def test_handwritten_greedy_loop_with_4x_hooks_equals_transformers_generate(pair):
    """A transformers 4.x-style decode loop (prepare/update_inputs_for_generation) on a left-padded batch."""
    _, ref, ours, _ = pair
    prompt = _ids(seed=8)[:, :PROMPT]
    mask = np.ones_like(prompt)
    prompt[1, :3], mask[1, :3] = 0, 0
    kwargs = ours.prepare_inputs_for_generation(prompt, WIDTH, attention_mask=mask)
    assert set(kwargs) == {"past_key_values", "attention_mask"} and kwargs["attention_mask"].shape == (BATCH, WIDTH)
    step = _step_fn(ours)
    tokens, ids = [], prompt
    for _ in range(WIDTH - PROMPT):
        logits, cache = step(ours.params, ids, kwargs["attention_mask"], kwargs["past_key_values"])
        out = FlaxCausalLMOutput(logits=logits)
        out["past_key_values"] = cache  # as `ours(...)` returns it
        kwargs = ours.update_inputs_for_generation(out, kwargs)
        ids = np.asarray(logits[:, -1].argmax(-1), np.int32)[:, None]
        tokens.append(ids)
    with torch.no_grad():
        expected = ref.generate(_torch(prompt), attention_mask=_torch(mask), max_new_tokens=WIDTH - PROMPT,
                                do_sample=False, eos_token_id=None, pad_token_id=0)
    np.testing.assert_array_equal(np.concatenate(tokens, axis=1), expected[:, PROMPT:].numpy())

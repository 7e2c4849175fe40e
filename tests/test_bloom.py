"""FlaxBloomModel / FlaxBloomForCausalLM against transformers' PyTorch BLOOM on the same random weights."""

from __future__ import annotations

import json

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
ERRORS: dict[str, float] = {}  # max parity errors, printed at the end with -s


@pytest.fixture(scope="module", autouse=True)
def _print_errors():
    """Print the max parity errors once the module is done (visible with -s)."""
    yield
    for key in sorted(ERRORS):
        print(f"\n{key}: {ERRORS[key]:.2e}", end="")


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


def _record(key: str, err: float) -> None:
    ERRORS[key] = max(err, ERRORS.get(key, 0.0))


def test_logits_hidden_states_attentions_match(pair):
    name, ref, ours, _ = pair
    ids = _ids()
    with torch.no_grad():
        expected = ref(_torch(ids), output_hidden_states=True, output_attentions=True)
    out = ours(ids, output_hidden_states=True, output_attentions=True)
    _record(f"{name}/logits", assert_close(out.logits, expected.logits, what="logits"))
    assert len(out.hidden_states) == len(expected.hidden_states) == 3
    for i, (a, b) in enumerate(zip(out.hidden_states, expected.hidden_states)):
        _record(f"{name}/hidden", assert_close(a, b, what=f"hidden_states[{i}]"))
    assert len(out.attentions) == 2
    for i, (a, b) in enumerate(zip(out.attentions, expected.attentions)):
        _record(f"{name}/attentions", assert_close(a, b, what=f"attentions[{i}]"))


def test_base_model_and_tuple_outputs(pair):
    name, ref, ours, path = pair
    ids = _ids(seed=2)
    base = FlaxBloomModel.from_pretrained(path)  # head checkpoint into the base model: prefix stripped
    assert not base.loading_report.unexpected or not ours.config.tie_word_embeddings
    with torch.no_grad():
        expected = ref.transformer(_torch(ids), output_hidden_states=True)
    out = base(ids, output_hidden_states=True)
    _record(f"{name}/base", assert_close(out.last_hidden_state, expected.last_hidden_state, what="base"))
    as_tuple = base(ids, output_hidden_states=True, return_dict=False)
    assert len(as_tuple) == 2 and len(as_tuple[1]) == 3  # (last_hidden_state, hidden_states)
    np.testing.assert_array_equal(as_tuple[0], out.last_hidden_state)
    logits_tuple = ours(ids, output_attentions=True, return_dict=False)
    assert len(logits_tuple) == 2 and len(logits_tuple[1]) == 2
    np.testing.assert_array_equal(logits_tuple[0], ours(ids).logits)


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
        _record(f"{name}/left_pad", assert_close(out.logits[i, real], expected.logits[i, real], what=f"row {i}"))
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


def test_cached_decoding_equals_full_forward(pair):
    name, _, ours, _ = pair
    ids = _ids(seed=1)
    full = np.asarray(ours(ids).logits)
    mask = np.ones_like(ids)
    stepped, cache = _decode(ours, ids, mask, prompt=PROMPT)
    _record(f"{name}/cached", assert_close(stepped, full, what="cached vs full"))
    layer = cache["transformer"]["h"]["0"]["self_attention"]
    assert int(layer["cache_index"]) == ids.shape[1]
    assert layer["cached_key"].shape == (2, ids.shape[1], ours.config.n_head,
                                         ours.config.hidden_size // ours.config.n_head)


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
        _record(f"{name}/cached_left_pad", assert_close(stepped[i, width - n:], alone, what=f"row {i}"))


def test_save_then_load_in_transformers(pair, tmp_path):
    name, _, ours, _ = pair
    ours.save_pretrained(tmp_path)
    reloaded, info = transformers.BloomForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    ids = _ids(seed=3)
    with torch.no_grad():
        expected = reloaded.eval()(_torch(ids)).logits
    _record(f"{name}/transformers_reload", assert_close(ours(ids).logits, expected, what="transformers reload"))
    with open(tmp_path / "config.json") as f:
        saved = json.load(f)
    assert saved["model_type"] == "bloom" and saved["architectures"] == ["BloomForCausalLM"]
    assert saved["slow_but_exact"] is False and saved["pretraining_tp"] == 1


def test_msgpack_round_trip(pair, tmp_path):
    _, _, ours, _ = pair
    ours.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "flax_model.msgpack").exists() and not (tmp_path / "model.safetensors").exists()
    again = FlaxBloomForCausalLM.from_pretrained(tmp_path)
    ids = _ids(seed=4)
    np.testing.assert_array_equal(again(ids).logits, ours(ids).logits)


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



def test_auto_classes_pick_bloom(pair):
    from flaxformers.auto import AutoConfig, FlaxAutoModel, FlaxAutoModelForCausalLM

    _, _, ours, path = pair
    assert isinstance(AutoConfig.from_pretrained(path), BloomConfig)
    assert type(FlaxAutoModelForCausalLM.from_pretrained(path)) is FlaxBloomForCausalLM
    assert type(FlaxAutoModel.from_pretrained(path)) is FlaxBloomModel


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


@pytest.mark.parametrize("pair", ["heads3_tied"], indirect=True)
def test_gradients_match_through_remat(pair):
    """Next-token loss gradients equal PyTorch's, with gradient checkpointing on (remat in the backward)."""
    _, ref, ours, path = pair
    ids = _ids(seed=7)
    model = FlaxBloomForCausalLM.from_pretrained(path)
    model.enable_gradient_checkpointing()

    def loss_fn(params):
        logits = model(ids, params=params).logits[:, :-1]
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, jnp.asarray(ids)[:, 1:, None], axis=-1).mean()

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(model.params)
    ref.zero_grad()
    ref_loss = ref(_torch(ids), labels=_torch(ids)).loss
    ref_loss.backward()
    assert_close(loss, ref_loss.detach(), what="loss")
    pt = dict(ref.named_parameters())
    g = grads["transformer"]
    checks = {
        "transformer.word_embeddings.weight": g["word_embeddings"]["embedding"],
        "transformer.h.0.self_attention.query_key_value.weight": g["h"]["0"]["self_attention"]["query_key_value"]
        ["kernel"].T,
        "transformer.h.1.mlp.dense_4h_to_h.bias": g["h"]["1"]["mlp"]["dense_4h_to_h"]["bias"],
        "transformer.word_embeddings_layernorm.weight": g["word_embeddings_layernorm"]["scale"],
    }
    for name, ours_grad in checks.items():
        _record("grads", assert_close(ours_grad, pt[name].grad, what=f"grad {name}"))


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


@pytest.mark.parametrize("pair", ["heads4_post_ln_residual"], indirect=True)
def test_scan_layers_parity_and_cache(pair):
    """Scan-over-layers stacks params and cache on a leading layer axis; outputs and cached decoding don't change."""
    _, ref, _, path = pair
    scanned = FlaxBloomForCausalLM.from_pretrained(path, scan_layers=True)
    ids = _ids(seed=9)
    with torch.no_grad():
        expected = ref(_torch(ids)).logits
    _record("scan/logits", assert_close(scanned(ids).logits, expected, what="scan logits"))
    stepped, cache = _decode(scanned, ids, np.ones_like(ids), prompt=PROMPT)
    _record("scan/cached", assert_close(stepped, expected, what="scan cached vs full"))
    assert cache["transformer"]["h"]["scanned"]["0"]["self_attention"]["cached_key"].shape[:3] == (2, BATCH, WIDTH)


# --- generate (the shared engine) ----------------------------------------------------------------
GEN_PROMPT = np.array([[11, 42, 7, 19, 83, 5], [0, 0, 64, 23, 9, 51]], np.int32)  # row 1 left-padded
GEN_MASK = (np.arange(GEN_PROMPT.shape[1]) >= np.array([[0], [2]])).astype(np.int32)


@pytest.mark.parametrize("pair, num_beams", [
    ("heads6_untied", 1), ("heads4_post_ln_residual", 1), ("heads6_untied", 3),  # (the tied 3-head model
], indirect=["pair"])                                                               # only repeats its input)
def test_generate_matches_transformers(pair, num_beams):
    """Greedy and beam search on a left-padded batch, EOS and padding included, through the shared engine."""
    _, ref, ours, _ = pair
    settings = dict(max_new_tokens=8, num_beams=num_beams, do_sample=False, pad_token_id=0, eos_token_id=2)
    sequences = ours.generate(GEN_PROMPT, attention_mask=GEN_MASK, **settings).sequences
    with torch.no_grad():
        expected = ref.generate(_torch(GEN_PROMPT), attention_mask=_torch(GEN_MASK), **settings)
    np.testing.assert_array_equal(np.asarray(sequences), expected.numpy())

"""Gemma, Gemma 2 and Gemma 3 (text) against transformers' PyTorch classes on the same random weights.

Each variant is a tiny random model saved by transformers with `save_pretrained`, its RMSNorm weights
randomised (transformers initialises them at 0, which would hide a swapped norm). Sequences are longer
than the sliding windows, so cached decoding crosses the window boundary.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers import (
    FlaxGemma2ForCausalLM,
    FlaxGemma3ForCausalLM,
    FlaxGemma3Model,
    FlaxGemmaForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    GemmaConfig,
)
from flaxformers.auto import AutoConfig, FlaxAutoModelForCausalLM
from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import flatten

TINY = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=64, pad_token_id=0, bos_token_id=2, eos_token_id=1)
SEQ = 12  # longer than every sliding window below
JIT_STATIC = ("output_attentions", "output_hidden_states", "return_dict", "train")


def _legacy_gelu(path: str) -> None:
    """Write the legacy `hidden_act: "gelu"` that released Gemma configs carry (transformers rewrites it)."""
    _edit_config(path, lambda c: c.update(hidden_act="gelu"))


def _gemma3_4x_keys(path: str) -> None:
    """Rewrite transformers 5's rope/layer keys the way Gemma 3 270M's config.json spells them (4.x)."""
    def edit(c):
        for key in ("rope_parameters", "layer_types", "_sliding_window_pattern"):
            c.pop(key, None)
        c.update(rope_theta=1000.0, rope_local_base_freq=50.0, sliding_window_pattern=2,
                 rope_scaling={"rope_type": "linear", "factor": 4.0})
    _edit_config(path, edit)


def _edit_config(path: str, fn) -> None:
    file = os.path.join(path, "config.json")
    with open(file) as f:
        config = json.load(f)
    fn(config)
    with open(file, "w") as f:
        json.dump(config, f)


@dataclass
class Variant:
    ref_config: type
    ref_model: type
    ours: type
    kwargs: dict[str, Any]
    edit: Any = None  # rewrites the saved config.json before we load it
    softcaps: bool = False


VARIANTS = {
    # head_dim 16 != hidden / heads = 8; one key/value head; tied head
    "gemma-mqa": Variant(transformers.GemmaConfig, transformers.GemmaForCausalLM, FlaxGemmaForCausalLM,
                         dict(num_key_value_heads=1, head_dim=16)),
    # two key/value heads; untied head; biases; linear rope scaling in transformers 5's spelling
    "gemma-gqa": Variant(transformers.GemmaConfig, transformers.GemmaForCausalLM, FlaxGemmaForCausalLM,
                         dict(num_key_value_heads=2, head_dim=12, tie_word_embeddings=False, attention_bias=True,
                              rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0})),
    "gemma-mha-legacy-gelu": Variant(transformers.GemmaConfig, transformers.GemmaForCausalLM, FlaxGemmaForCausalLM,
                                     dict(num_key_value_heads=4, head_dim=8), edit=_legacy_gelu),
    # sliding window 5 on layer 0, global layer 1; both soft-caps active at these weight scales
    "gemma2": Variant(transformers.Gemma2Config, transformers.Gemma2ForCausalLM, FlaxGemma2ForCausalLM,
                      dict(num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=24, sliding_window=5,
                           attn_logit_softcapping=2.0, final_logit_softcapping=2.5, initializer_range=0.2,
                           tie_word_embeddings=False),
                      softcaps=True),
    # sliding window 4, local rope base 50, global base 1000 with linear scaling x4, q/k norms, MQA
    "gemma3": Variant(transformers.Gemma3TextConfig, transformers.Gemma3ForCausalLM, FlaxGemma3ForCausalLM,
                      dict(num_key_value_heads=1, head_dim=16, sliding_window=4, sliding_window_pattern=2,
                           rope_theta=1000.0, rope_local_base_freq=50.0, initializer_range=0.1,
                           rope_scaling={"rope_type": "linear", "factor": 4.0}),
                      edit=_gemma3_4x_keys),
}


@dataclass
class Case:
    name: str
    ref: Any
    ours: Any
    path: str
    fwd: Any  # jitted ours.__call__
    ids: np.ndarray
    out: Any  # our full forward of `ids`, with hidden states and attentions
    expected: Any  # transformers' on the same ids


_CASES: dict[str, Case] = {}


def _torch(ids) -> torch.Tensor:
    return torch.tensor(np.asarray(ids), dtype=torch.long)


def _build(name: str, tmp_path_factory) -> Case:
    if name in _CASES:
        return _CASES[name]
    v = VARIANTS[name]
    torch.manual_seed(0)
    ref = v.ref_model(v.ref_config(**{**TINY, **v.kwargs})).eval()
    with torch.no_grad():
        for pname, p in ref.named_parameters():
            if "norm" in pname:
                p.normal_(0.0, 0.5)
    ref.config._attn_implementation = "eager"
    path = str(tmp_path_factory.mktemp(name))
    ref.save_pretrained(path)
    if v.edit is not None:
        v.edit(path)
    ours = v.ours.from_pretrained(path)
    fwd = jax.jit(ours.__call__, static_argnames=JIT_STATIC)
    ids = np.random.RandomState(0).randint(3, TINY["vocab_size"], (2, SEQ)).astype(np.int32)
    out = fwd(ids, attention_mask=np.ones_like(ids), position_ids=np.broadcast_to(np.arange(SEQ), ids.shape),
              output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        expected = ref(_torch(ids), output_hidden_states=True, output_attentions=True)
    _CASES[name] = Case(name, ref, ours, path, fwd, ids, out, expected)
    return _CASES[name]


@pytest.fixture(scope="module", params=list(VARIANTS))
def case(request, tmp_path_factory) -> Case:
    return _build(request.param, tmp_path_factory)


# --- parity --------------------------------------------------------------------------------------
def test_logits_hidden_states_attentions_match(case):
    out, expected = case.out, case.expected
    assert_close(out.logits, expected.logits, what="logits")
    n = TINY["num_hidden_layers"]
    assert len(out.hidden_states) == len(expected.hidden_states) == n + 1
    for i, (a, b) in enumerate(zip(out.hidden_states, expected.hidden_states)):
        assert_close(a, b, what=f"hidden_states[{i}]")
    assert len(out.attentions) == len(expected.attentions) == n
    for i, (a, b) in enumerate(zip(out.attentions, expected.attentions)):
        assert_close(a, b, what=f"attentions[{i}]")


def test_sliding_layers_really_slide(case):
    """Where a layer slides, keys further back than the window get no weight (and the sequence is longer)."""
    config = case.ours.config
    for i, layer_type in enumerate(config.layer_types):
        weights = np.asarray(case.out.attentions[i])  # [B, N, T, S]
        q, k = np.arange(SEQ)[:, None], np.arange(SEQ)[None, :]
        if layer_type == "sliding_attention":
            assert config.sliding_window < SEQ
            assert np.all(weights[..., q - k >= config.sliding_window] == 0)
        else:
            assert np.all(weights[..., q - k >= 0] > 0)


def test_softcaps_change_the_reference(tmp_path_factory):
    """Guard for the soft-capping variant: the caps must be active, or parity would not test them."""
    case = _build("gemma2", tmp_path_factory)
    ref = case.ref
    with torch.no_grad():
        capped = ref(_torch(case.ids)).logits
        final = ref.config.final_logit_softcapping
        ref.config.final_logit_softcapping = None
        for layer in ref.model.layers:
            layer.self_attn.attn_logit_softcapping = None
        try:
            uncapped = ref(_torch(case.ids)).logits
        finally:
            ref.config.final_logit_softcapping = final
            for layer in ref.model.layers:
                layer.self_attn.attn_logit_softcapping = ref.config.attn_logit_softcapping
    assert (capped - uncapped).abs().max() > 0.05


def test_cached_decoding_equals_full_forward(case):
    """Feed the sequence in chunks of 3 through the static cache: across the sliding-window boundary."""
    ours, ids = case.ours, case.ids
    batch, chunk = ids.shape[0], 3
    cache = ours.init_cache(batch, SEQ)
    mask = np.ones((batch, SEQ), np.int32)
    steps = []
    for start in range(0, SEQ, chunk):
        positions = np.broadcast_to(np.arange(start, start + chunk), (batch, chunk))
        logits, cache = case.fwd(ids[:, start:start + chunk], attention_mask=mask, past_key_values=cache,
                                 position_ids=positions, return_dict=False)[:2]
        steps.append(np.asarray(logits))
    assert_close(np.concatenate(steps, axis=1), case.out.logits, what="cached vs full")
    assert int(cache["model"]["layers"]["0"]["self_attn"]["cache_index"]) == SEQ


def test_left_padded_batch_equals_rows_alone(case):
    short = 7
    ids = case.ids.copy()
    mask = np.ones_like(ids)
    ids[1, :SEQ - short], mask[1, :SEQ - short] = 0, 0
    positions = np.maximum(mask.cumsum(-1) - 1, 0)
    out = case.fwd(ids, attention_mask=mask, position_ids=positions, output_hidden_states=True,
                   output_attentions=True)
    logits = np.asarray(out.logits)
    assert_close(logits[0], case.expected.logits[0], what="unpadded row")
    with torch.no_grad():
        alone = case.ref(_torch(ids[1:, SEQ - short:])).logits[0]
    assert_close(logits[1, SEQ - short:], alone, what="left-padded row vs the row alone")


def test_save_then_load_in_transformers(case, tmp_path):
    case.ours.save_pretrained(tmp_path)
    ref_cls = VARIANTS[case.name].ref_model
    reloaded, info = ref_cls.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    if hasattr(case.ref.config, "layer_types"):  # Gemma 2/3: the same sliding and global layers
        assert reloaded.config.layer_types == case.ref.config.layer_types
    with torch.no_grad():
        expected = reloaded.eval()(_torch(case.ids)).logits
    assert_close(case.out.logits, expected, what="transformers reload")


# --- heads, dtypes, formats ------------------------------------------------------------------------
def test_base_model_from_causal_lm_checkpoint(tmp_path_factory):
    case = _build("gemma3", tmp_path_factory)
    base = FlaxGemma3Model.from_pretrained(case.path)  # the "model." prefix is stripped
    hidden = jax.jit(base.__call__, static_argnames=JIT_STATIC)(case.ids).last_hidden_state
    with torch.no_grad():
        expected = case.ref.model(_torch(case.ids)).last_hidden_state
    assert_close(hidden, expected, what="base last_hidden_state")


def test_return_tuple(tmp_path_factory):
    case = _build("gemma3", tmp_path_factory)
    as_tuple = case.fwd(case.ids, attention_mask=np.ones_like(case.ids),
                        position_ids=np.broadcast_to(np.arange(SEQ), case.ids.shape),
                        output_hidden_states=True, output_attentions=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 3
    np.testing.assert_array_equal(as_tuple[0], case.out.logits)


def test_bf16_path(tmp_path_factory):
    case = _build("gemma3", tmp_path_factory)
    bf16 = FlaxGemma3ForCausalLM(case.ours.config, dtype=jnp.bfloat16, _do_init=False)
    params = bf16.to_bf16(case.ours.params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree_util.tree_leaves(params))
    logits = jax.jit(lambda p, ids: bf16(ids, params=p).logits)(params, case.ids)
    assert logits.dtype == jnp.bfloat16
    logits = np.asarray(logits, dtype=np.float32)
    expected = case.expected.logits.numpy()
    # bf16 keeps 8 mantissa bits; through 2 layers the error stays within a few percent of the logit scale.
    assert np.abs(logits - expected).max() <= 0.05 * np.abs(expected).max()
    assert (logits.argmax(-1) == expected.argmax(-1)).mean() > 0.9


def test_param_tree_is_transformers_4x_flax_layout(tmp_path_factory, tmp_path):
    """transformers 4.57's FlaxGemmaForCausalLM tree, so its flax_model.msgpack files load as they are."""
    case = _build("gemma-gqa", tmp_path_factory)  # untied head, with biases
    layer = {f"self_attn/{p}_proj/{leaf}" for p in "qkvo" for leaf in ("kernel", "bias")}
    layer |= {f"mlp/{p}_proj/kernel" for p in ("gate", "up", "down")}
    layer |= {"input_layernorm/weight", "post_attention_layernorm/weight"}
    expected = {f"model/layers/{i}/{p}" for i in range(2) for p in layer}
    expected |= {"model/embed_tokens/embedding", "model/norm/weight", "lm_head/kernel"}
    assert {"/".join(p) for p in flatten(case.ours.params)} == expected
    assert case.ours.params["model"]["layers"]["0"]["self_attn"]["k_proj"]["kernel"].shape == (32, 2 * 12)

    case.ours.save_pretrained(tmp_path, safe_serialization=False)
    assert os.listdir(tmp_path).count(io.FLAX_WEIGHTS_NAME) == 1
    stored = flatten(io.read_msgpack(os.path.join(tmp_path, io.FLAX_WEIGHTS_NAME)))
    assert {"/".join(p) for p in stored} == expected
    reloaded = FlaxGemmaForCausalLM.from_pretrained(tmp_path)
    for path, value in flatten(case.ours.params).items():
        np.testing.assert_array_equal(flatten(reloaded.params)[path], value)


def test_gemma2_and_gemma3_param_names_are_pytorch_names(tmp_path_factory):
    for name, extra in (("gemma2", set()), ("gemma3", {"self_attn/q_norm/weight", "self_attn/k_norm/weight"})):
        case = _build(name, tmp_path_factory)
        layer = {"/".join(p) for p in flatten(case.ours.params["model"]["layers"]["0"])}
        norms = {f"{n}/weight" for n in ("input_layernorm", "post_attention_layernorm",
                                         "pre_feedforward_layernorm", "post_feedforward_layernorm")}
        assert norms | extra <= layer


def test_auto_classes_pick_the_gemma_class(tmp_path_factory):
    for name, cls, config_cls in (("gemma-mqa", FlaxGemmaForCausalLM, GemmaConfig),
                                  ("gemma2", FlaxGemma2ForCausalLM, Gemma2Config),
                                  ("gemma3", FlaxGemma3ForCausalLM, Gemma3TextConfig)):
        case = _build(name, tmp_path_factory)
        assert type(AutoConfig.from_pretrained(case.path)) is config_cls
        assert type(FlaxAutoModelForCausalLM.from_pretrained(case.path)) is cls
        assert cls.can_generate()


# --- configs ---------------------------------------------------------------------------------------
def test_legacy_hidden_act_gelu_warns_and_means_tanh(tmp_path_factory, caplog):
    case = _build("gemma-mha-legacy-gelu", tmp_path_factory)
    with caplog.at_level(logging.WARNING, logger="flaxformers"):
        config = GemmaConfig.from_pretrained(case.path)
    assert config.hidden_act == "gelu" and config.hidden_activation_name == "gelu_pytorch_tanh"
    assert any('hidden_act="gelu"' in r.getMessage() and "hidden_activation" in r.getMessage()
               for r in caplog.records)
    # transformers reads the same file as tanh GeLU too, and the parity test of this variant holds.
    assert transformers.AutoConfig.from_pretrained(case.path).hidden_act == "gelu_pytorch_tanh"
    assert GemmaConfig(hidden_activation="gelu").hidden_activation_name == "gelu"  # exact GeLU on request


def test_gemma3_4x_config_keys_read_like_transformers(tmp_path_factory):
    """rope_theta / rope_local_base_freq / rope_scaling / sliding_window_pattern, as Gemma 3 270M writes them."""
    case = _build("gemma3", tmp_path_factory)
    theirs = transformers.AutoConfig.from_pretrained(case.path)
    ours = Gemma3TextConfig.from_pretrained(case.path)
    assert ours.layer_types == theirs.layer_types == ["sliding_attention", "full_attention"]
    for layer_type in ("sliding_attention", "full_attention"):
        params = theirs.rope_parameters[layer_type]
        factor = params.get("factor", 1.0) if params["rope_type"] == "linear" else 1.0
        assert ours.rope_for(layer_type) == (params["rope_theta"], factor)
    assert ours.rope_for("sliding_attention") == (50.0, 1.0) and ours.rope_for("full_attention") == (1000.0, 4.0)


def test_transformers_5_rope_parameters_are_read():
    nested = Gemma3TextConfig(num_hidden_layers=6, rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}})
    assert nested.rope_for("full_attention") == (1e6, 8.0) and nested.rope_for("sliding_attention") == (1e4, 1.0)
    assert nested.layer_types == ["sliding_attention"] * 5 + ["full_attention"]
    flat = Gemma2Config(rope_parameters={"rope_type": "default", "rope_theta": 123.0})
    assert flat.rope_for("sliding_attention") == flat.rope_for("full_attention") == (123.0, 1.0)
    assert GemmaConfig(rope_theta=77.0).rope_for("full_attention") == (77.0, 1.0)


def test_config_round_trip_keeps_keys(tmp_path):
    config = Gemma3TextConfig(num_hidden_layers=3, sliding_window=16, my_key=5)
    config.save_pretrained(tmp_path)
    again = Gemma3TextConfig.from_pretrained(tmp_path)
    assert again.layer_types == config.layer_types and again.my_key == 5 and again.sliding_window == 16
    assert transformers.AutoConfig.from_pretrained(tmp_path).layer_types == config.layer_types


@pytest.mark.parametrize("config_cls, kwargs, match", [
    (GemmaConfig, dict(num_attention_heads=4, num_key_value_heads=3), "num_key_value_heads=3"),
    (GemmaConfig, dict(head_dim=7), "head_dim=7"),
    (GemmaConfig, dict(hidden_activation="nope"), "hidden_activation='nope'"),
    (GemmaConfig, dict(rope_scaling={"rope_type": "yarn", "factor": 2.0}), "rope_type='yarn'"),
    (GemmaConfig, dict(rope_scaling={"rope_type": "linear"}), "factor"),
    (Gemma2Config, dict(num_hidden_layers=2, layer_types=["sliding_attention"]), "num_hidden_layers=2"),
    (Gemma2Config, dict(num_hidden_layers=1, layer_types=["local"]), "layer_types holds"),
    (Gemma2Config, dict(sliding_window=None), "sliding_window=None"),
    (Gemma2Config, dict(query_pre_attn_scalar=0), "query_pre_attn_scalar=0"),
    (Gemma2Config, dict(attn_logit_softcapping=-1.0), "attn_logit_softcapping"),
    (Gemma3TextConfig, dict(use_bidirectional_attention=True), "use_bidirectional_attention"),
    (Gemma3TextConfig, dict(sliding_window_pattern=0), "sliding_window_pattern=0"),
])
def test_bad_configs_give_clear_errors(config_cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        config_cls(**kwargs)


def test_wrong_family_class_errors(tmp_path_factory):
    case = _build("gemma2", tmp_path_factory)
    with pytest.raises(ValueError, match="model_type='gemma2'"):
        FlaxGemmaForCausalLM.from_pretrained(case.path)


def test_token_ids_out_of_range_error(tmp_path_factory):
    case = _build("gemma-mqa", tmp_path_factory)
    with pytest.raises(ValueError, match="vocab_size=97"):
        case.ours(np.array([[1, 2, 97]]))


# --- generate --------------------------------------------------------------------------------------
PROMPT = np.array([[11, 42, 7, 19, 83, 5], [0, 0, 64, 23, 9, 51]], np.int32)  # row 1 left-padded
PROMPT_MASK = (np.arange(PROMPT.shape[1]) >= np.array([[0], [2]])).astype(np.int32)


@pytest.mark.parametrize("name, num_beams", [
    ("gemma-gqa", 1), ("gemma2", 1), ("gemma3", 1), ("gemma-gqa", 3), ("gemma3", 3),  # beam compiles cost most
])
def test_generate_matches_transformers(name, num_beams, tmp_path_factory):
    """10 new tokens from a 6-token prompt: decoding runs past the sliding windows (4 and 5)."""
    case = _build(name, tmp_path_factory)
    settings = dict(max_new_tokens=10, num_beams=num_beams, do_sample=False, pad_token_id=0, eos_token_id=1)
    ours = case.ours.generate(PROMPT, attention_mask=PROMPT_MASK, **settings).sequences
    with torch.no_grad():
        expected = case.ref.generate(_torch(PROMPT), attention_mask=_torch(PROMPT_MASK), **settings)
    np.testing.assert_array_equal(np.asarray(ours), expected.numpy())

"""Gemma, Gemma 2 and Gemma 3 (text): what is their own. Parity, cache, padding, checkpoints and
generate go through the causal-LM harness (test_causal_lm.py), whose cases these tests reuse.
"""

from __future__ import annotations

import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from test_causal_lm import SEQ, build

from flaxformers import (
    FlaxGemma3ForCausalLM,
    FlaxGemmaForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    GemmaConfig,
)
from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import flatten


def _torch(ids) -> torch.Tensor:
    return torch.tensor(np.asarray(ids), dtype=torch.long)


def _on_the_case_worker(name: str) -> pytest.MarkDecorator:
    """Run beside the harness's tests of case `name` (one xdist group), which built its models already."""
    return pytest.mark.xdist_group(f"causal-{name}")


@pytest.fixture(scope="module", params=[pytest.param(n, marks=_on_the_case_worker(n))
                                        for n in ("gemma-mqa-legacy-gelu", "gemma-gqa", "gemma2", "gemma3")])
def case(request, tmp_path_factory):
    return build(request.param, tmp_path_factory)


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


@_on_the_case_worker("gemma2")
def test_softcaps_change_the_reference(tmp_path_factory):
    """Guard for the soft-capping variant: the caps must be active, or parity would not test them."""
    case = build("gemma2", tmp_path_factory)
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


@_on_the_case_worker("gemma3")
def test_bf16_path(tmp_path_factory):
    case = build("gemma3", tmp_path_factory)
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


@_on_the_case_worker("gemma-gqa")
def test_param_tree_is_transformers_4x_flax_layout(tmp_path_factory, tmp_path):
    """transformers 4.57's FlaxGemmaForCausalLM tree, so its flax_model.msgpack files load as they are."""
    case = build("gemma-gqa", tmp_path_factory)  # untied head, with biases
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
        case = build(name, tmp_path_factory)
        layer = {"/".join(p) for p in flatten(case.ours.params["model"]["layers"]["0"])}
        norms = {f"{n}/weight" for n in ("input_layernorm", "post_attention_layernorm",
                                         "pre_feedforward_layernorm", "post_feedforward_layernorm")}
        assert norms | extra <= layer


@_on_the_case_worker("gemma-mqa-legacy-gelu")
def test_legacy_hidden_act_gelu_warns_and_means_tanh(tmp_path_factory, caplog):
    case = build("gemma-mqa-legacy-gelu", tmp_path_factory)
    with caplog.at_level(logging.WARNING, logger="flaxformers"):
        config = GemmaConfig.from_pretrained(case.path)
    assert config.hidden_act == "gelu" and config.hidden_activation_name == "gelu_pytorch_tanh"
    assert any('hidden_act="gelu"' in r.getMessage() and "hidden_activation" in r.getMessage()
               for r in caplog.records)
    # transformers reads the same file as tanh GeLU too, and the parity test of this variant holds.
    assert transformers.AutoConfig.from_pretrained(case.path).hidden_act == "gelu_pytorch_tanh"
    assert GemmaConfig(hidden_activation="gelu").hidden_activation_name == "gelu"  # exact GeLU on request


@_on_the_case_worker("gemma3")
def test_gemma3_4x_config_keys_read_like_transformers(tmp_path_factory):
    """rope_theta / rope_local_base_freq / rope_scaling / sliding_window_pattern, as Gemma 3 270M writes them."""
    case = build("gemma3", tmp_path_factory)
    theirs = transformers.AutoConfig.from_pretrained(case.path)
    ours = Gemma3TextConfig.from_pretrained(case.path)
    assert ours.layer_types == theirs.layer_types == ["sliding_attention", "full_attention"]
    for layer_type in ("sliding_attention", "full_attention"):
        params = theirs.rope_parameters[layer_type]
        factor = params.get("factor", 1.0) if params["rope_type"] == "linear" else 1.0
        assert _theta_factor(ours.rope_for(layer_type)) == (params["rope_theta"], factor)
    assert _theta_factor(ours.rope_for("sliding_attention")) == (50.0, 1.0)
    assert _theta_factor(ours.rope_for("full_attention")) == (1000.0, 4.0)


def _theta_factor(spec) -> tuple[float, float]:
    return spec.theta, spec.factor


def test_transformers_5_rope_parameters_are_read():
    nested = Gemma3TextConfig(num_hidden_layers=6, rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}})
    assert _theta_factor(nested.rope_for("full_attention")) == (1e6, 8.0)
    assert _theta_factor(nested.rope_for("sliding_attention")) == (1e4, 1.0)
    assert nested.layer_types == ["sliding_attention"] * 5 + ["full_attention"]
    flat = Gemma2Config(rope_parameters={"rope_type": "default", "rope_theta": 123.0})
    assert _theta_factor(flat.rope_for("sliding_attention")) == _theta_factor(flat.rope_for("full_attention")) == (
        123.0, 1.0)
    assert _theta_factor(GemmaConfig(rope_theta=77.0).rope_for("full_attention")) == (77.0, 1.0)


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
    (GemmaConfig, dict(rope_scaling={"rope_type": "nope", "factor": 2.0}), "rope_type='nope'"),
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


@_on_the_case_worker("gemma2")
def test_wrong_family_class_errors(tmp_path_factory):
    case = build("gemma2", tmp_path_factory)
    with pytest.raises(ValueError, match="model_type='gemma2'"):
        FlaxGemmaForCausalLM.from_pretrained(case.path)


@_on_the_case_worker("gemma-mqa-legacy-gelu")
def test_token_ids_out_of_range_error(tmp_path_factory):
    case = build("gemma-mqa-legacy-gelu", tmp_path_factory)
    with pytest.raises(ValueError, match="vocab_size=97"):
        case.ours(np.array([[1, 2, 97]]))

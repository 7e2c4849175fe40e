"""Sharding on 8 simulated CPU devices: sharded forward, train step and generate equal one device.

XLA's device count is fixed when jax starts, so the real tests run in a child pytest process with
`--xla_force_host_platform_device_count=8`; under a plain `pytest` this module holds one test that
starts the child and reports its result, and the rest of the suite keeps one device.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

CHILD_FLAG = "FLAXFORMERS_SHARDING_CHILD"

if os.environ.get(CHILD_FLAG) != "1":

    def test_sharded_equals_single_device_on_8_simulated_devices():
        env = dict(os.environ, **{CHILD_FLAG: "1", "JAX_PLATFORMS": "cpu"})
        # 8 host devices; the lowest backend optimisation level compiles these tiny programs ~3x faster.
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
                            " --xla_backend_optimization_level=0").strip()
        here = os.path.dirname(os.path.abspath(__file__))
        child = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
             os.path.abspath(__file__)],
            cwd=os.path.dirname(here), env=env, capture_output=True, text=True, timeout=900,
        )
        assert child.returncode == 0, f"8-device tests failed:\n{child.stdout[-6000:]}\n{child.stderr[-3000:]}"
        assert " passed" in child.stdout and "skipped" not in child.stdout, child.stdout[-2000:]

else:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import pytest
    from _helpers import assert_close
    from jax.sharding import PartitionSpec as P

    import flaxformers as ff
    from flaxformers.checkpoints.convert import flatten
    from flaxformers.training import (
        PARTITION_RULES,
        TrainState,
        make_mesh,
        make_train_step,
        shard_batch,
        shard_params,
        shard_train_state,
    )

    GPT2_TINY = dict(vocab_size=96, n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)
    FAMILIES = {
        # Untied heads, so that every rule (lm_head, the MLM decoder) has a param to match.
        "gpt2": (ff.GPT2Config, ff.FlaxGPT2LMHeadModel, dict(GPT2_TINY, tie_word_embeddings=False)),
        "gemma": (ff.GemmaConfig, ff.FlaxGemmaForCausalLM,
                  dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=8, max_position_embeddings=32, tie_word_embeddings=False)),
        # Biases on: the bias rules have params to match.
        "llama": (ff.LlamaConfig, ff.FlaxLlamaForCausalLM,
                  dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=32, attention_bias=True, mlp_bias=True)),
        "bloom": (ff.BloomConfig, ff.FlaxBloomForCausalLM,
                  dict(vocab_size=96, hidden_size=32, n_layer=2, n_head=4, tie_word_embeddings=False)),
        "bert": (ff.BertConfig, ff.FlaxBertForPreTraining,
                 dict(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                      max_position_embeddings=32, tie_word_embeddings=False)),
        "gpt_neo": (ff.GPTNeoConfig, ff.FlaxGPTNeoForCausalLM,
                    dict(vocab_size=96, hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=32,
                         attention_types=[[["global", "local"], 1]], window_size=4, tie_word_embeddings=False)),
        "opt": (ff.OPTConfig, ff.FlaxOPTForCausalLM,
                dict(vocab_size=96, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=32, tie_word_embeddings=False)),
        "xglm": (ff.XGLMConfig, ff.FlaxXGLMForCausalLM,
                 dict(vocab_size=96, d_model=32, ffn_dim=64, num_layers=2, attention_heads=4, max_position_embeddings=32,
                      tie_word_embeddings=False)),
        "gptj": (ff.GPTJConfig, ff.FlaxGPTJForCausalLM,
                 dict(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=32, rotary_dim=4)),
    }

    def _random(model_cls, config, seed=0):
        """A model without init (nothing to compile) and random params drawn from its shapes."""
        model = model_cls(config, _do_init=False)
        rng = np.random.RandomState(seed)
        params = jax.tree_util.tree_map(lambda s: rng.normal(0, 0.1, s.shape).astype(np.float32),
                                        model.params_shape_tree)
        return model, params

    def test_eight_devices():
        assert jax.device_count() == 8

    @pytest.fixture(scope="module")
    def mesh():
        return make_mesh(data=2, fsdp=2, tensor=2)

    @pytest.fixture(scope="module")
    def gpt2(tmp_path_factory):
        model, params = _random(ff.FlaxGPT2LMHeadModel, ff.GPT2Config(**GPT2_TINY))
        path = tmp_path_factory.mktemp("gpt2")
        model.save_pretrained(path, params=params, max_shard_size="30KB")  # sharded: several safetensors + index
        assert os.path.exists(path / "model.safetensors.index.json")
        return model, params, str(path)

    def _ids(batch=4, seq=8, seed=0, high=96):
        return np.random.RandomState(seed).randint(1, high, (batch, seq)).astype(np.int32)

    @pytest.mark.parametrize("family", list(FAMILIES))
    def test_rules_shard_every_family_and_forward_matches(family, mesh):
        config_cls, model_cls, kwargs = FAMILIES[family]
        model, params = _random(model_cls, config_cls(**kwargs))
        sharded = shard_params(params, model, mesh)
        paths = ["/".join(p) for p in flatten(params)]
        for pattern, _ in PARTITION_RULES[model.config.model_type]:  # no stale rule: each names some param
            if family == "gemma" and "bias" in pattern:
                continue  # Gemma has no attention bias by default
            assert any(re.search(pattern, p) for p in paths), f"{family}: rule {pattern!r} matches nothing"
        specs = {tuple(x.sharding.spec) for x in jax.tree_util.tree_leaves(sharded)}
        assert any("tensor" in s for s in specs) and any("fsdp" in s for s in specs), specs
        ids = _ids()
        out, ref = model(ids, params=sharded), model(ids, params=params)
        for field in ("logits", "prediction_logits"):
            if field in ref:
                assert_close(out[field], ref[field], atol=1e-5, what=f"{family} sharded {field}")

    def test_from_pretrained_with_mesh_places_each_tensor(gpt2, mesh):
        model, params, path = gpt2
        loaded = ff.FlaxGPT2LMHeadModel.from_pretrained(path, mesh=mesh)
        kernel = loaded.params["transformer"]["h"]["0"]["attn"]["c_attn"]["kernel"]  # [3D, D], column-parallel
        assert kernel.sharding.spec == P("tensor", "fsdp")
        assert len(kernel.addressable_shards) == 8 and kernel.addressable_shards[0].data.shape == (48, 16)
        assert loaded.params["transformer"]["ln_f"]["scale"].sharding.spec == P()
        ids = _ids()
        expected = model(ids, params=params).logits
        assert_close(loaded(ids).logits, expected, atol=1e-5, what="from_pretrained(mesh=) logits")
        scanned = ff.FlaxGPT2LMHeadModel.from_pretrained(path, mesh=mesh, scan_layers=True)
        stacked = scanned.params["transformer"]["h"]["scanned"]["0"]["attn"]["c_attn"]["kernel"]
        assert stacked.shape == (2, 96, 32) and stacked.sharding.spec == P(None, "tensor", "fsdp")
        assert_close(scanned(ids).logits, expected, atol=1e-5, what="scanned + mesh logits")

    def test_sharded_train_step_equals_one_device(gpt2, mesh):
        model, params, _ = gpt2  # dropout on: the RNG is split the same way on one device and on the mesh
        tx = optax.adamw(1e-3, weight_decay=0.01)
        ids = _ids(8, 8, seed=1)
        batch = {"input_ids": ids, "attention_mask": np.ones_like(ids), "labels": ids}
        single = make_train_step(model, tx, grad_accum_steps=2, max_grad_norm=1.0)
        sharded = make_train_step(model, tx, grad_accum_steps=2, max_grad_norm=1.0, mesh=mesh)
        one = TrainState.create(params, tx, seed=7)
        many = shard_train_state(TrainState.create(params, tx, seed=7), model, mesh)
        mu = many.opt_state[0].mu["transformer"]["h"]["0"]["mlp"]["c_fc"]["kernel"]
        assert mu.sharding.spec == P("tensor", "fsdp")  # optimizer moments are sharded like their params
        for _ in range(2):
            one, m1 = single(one, batch)
            many, m2 = sharded(many, shard_batch(batch, mesh))
            assert_close(m2["loss"], m1["loss"], atol=1e-5, what="sharded loss")
        assert many.params["transformer"]["wte"]["embedding"].sharding.spec == P("tensor", "fsdp")
        for path, value in flatten(one.params).items():
            assert_close(flatten(many.params)[path], value, atol=1e-5, what="sharded params " + "/".join(path))
        with pytest.raises(ValueError, match="multiple of 4"):
            shard_batch({"input_ids": ids[:6]}, mesh)

    def test_sharded_generate_equals_one_device(gpt2, mesh):
        model, params, path = gpt2
        loaded = ff.FlaxGPT2LMHeadModel.from_pretrained(path, mesh=mesh)
        ids = _ids(2, 5, seed=2)
        mask = np.ones_like(ids)
        mask[1, :2] = 0  # left padding
        expected = model.generate(ids, attention_mask=mask, params=params, max_new_tokens=6, do_sample=False)
        got = loaded.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
        assert jnp.asarray(got.sequences).shape == (2, 11)
        np.testing.assert_array_equal(np.asarray(got.sequences), np.asarray(expected.sequences))
        scanned = ff.FlaxGPT2LMHeadModel.from_pretrained(path, mesh=mesh, scan_layers=True)  # stacked cache too
        got = scanned.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
        np.testing.assert_array_equal(np.asarray(got.sequences), np.asarray(expected.sequences))

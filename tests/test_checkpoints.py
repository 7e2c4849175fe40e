"""Checkpoint formats, the base-model contract, configs and hub resolution, on tiny GPT-2 weights."""

from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers import FlaxGPT2LMHeadModel, FlaxGPT2Model, GPT2Config
from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import flatten
from flaxformers.checkpoints.hub import ModelNotFoundError

TINY = dict(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**TINY)).eval()
    path = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(path)
    return model, str(path)


@pytest.fixture(scope="module")
def ours(reference):
    return FlaxGPT2LMHeadModel.from_pretrained(reference[1])


IDS = np.array([[5, 9, 2, 33, 7], [1, 2, 3, 4, 63]], dtype=np.int32)


def _flat(params):
    return {k: np.asarray(v) for k, v in flatten(params).items()}


def _assert_same_params(a, b):
    fa, fb = _flat(a), _flat(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg="/".join(k))


# --- formats ---------------------------------------------------------------------------------------
def test_sharded_safetensors_round_trip(ours, reference, tmp_path):
    ours.save_pretrained(tmp_path, max_shard_size="20KB")
    index = json.loads((tmp_path / io.SAFE_WEIGHTS_INDEX_NAME).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and not (tmp_path / io.SAFE_WEIGHTS_NAME).exists()
    reloaded = FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    _assert_same_params(reloaded.params, ours.params)
    ref = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()  # transformers reads our shards too
    with torch.no_grad():
        assert_close(ours(IDS).logits, ref(torch.tensor(IDS, dtype=torch.long)).logits, what="sharded reload")


def test_msgpack_round_trip_and_sharded_msgpack(ours, tmp_path):
    ours.save_pretrained(tmp_path / "one", safe_serialization=False)
    assert (tmp_path / "one" / io.FLAX_WEIGHTS_NAME).exists()
    _assert_same_params(FlaxGPT2LMHeadModel.from_pretrained(tmp_path / "one").params, ours.params)
    ours.save_pretrained(tmp_path / "many", safe_serialization=False, max_shard_size="20KB")
    assert (tmp_path / "many" / io.FLAX_WEIGHTS_INDEX_NAME).exists()
    _assert_same_params(FlaxGPT2LMHeadModel.from_pretrained(tmp_path / "many").params, ours.params)
    # 4.57's loaders of the raw trees
    _assert_same_params(FlaxGPT2LMHeadModel.load_flax_weights(tmp_path / "one" / io.FLAX_WEIGHTS_NAME), ours.params)
    shards = sorted(str(p) for p in (tmp_path / "many").glob("flax_model-*.msgpack"))
    assert len(shards) > 1
    _assert_same_params(FlaxGPT2LMHeadModel.load_flax_sharded_weights(shards), ours.params)


def test_torch_bin_loads_with_weights_only(reference, ours, tmp_path):
    ref, _ = reference
    ref.save_pretrained(tmp_path, safe_serialization=False) if _supports_bin() else torch.save(
        ref.state_dict(), tmp_path / io.PT_WEIGHTS_NAME)
    ref.config.save_pretrained(tmp_path)
    if (tmp_path / io.SAFE_WEIGHTS_NAME).exists():
        os.remove(tmp_path / io.SAFE_WEIGHTS_NAME)
    loaded = FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    assert_close(loaded(IDS).logits, ours(IDS).logits, what=".bin vs safetensors")


def _supports_bin() -> bool:
    import inspect

    return "safe_serialization" in inspect.signature(transformers.PreTrainedModel.save_pretrained).parameters


def test_torch_bin_refuses_pickled_objects(tmp_path):
    torch.save({"weight": torch.zeros(2), "evil": _Payload()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(io.CheckpointError, match="allow_pickle=True"):
        io.read_torch_bin(tmp_path / "pytorch_model.bin")


class _Payload:
    pass


def test_base_checkpoint_into_head_model_and_back(reference, ours, tmp_path):
    ref, _ = reference
    ref.transformer.save_pretrained(tmp_path)  # a GPT2Model checkpoint: names without "transformer."
    head = FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    assert_close(head(IDS).logits, ours(IDS).logits, what="base ckpt into LM head (tied)")
    base = FlaxGPT2Model.from_pretrained(tmp_path)
    base.save_pretrained(tmp_path / "base")
    names = set(io.read_state_dict(tmp_path / "base"))
    assert "wte.weight" in names and not any(n.startswith("transformer.") for n in names)


def test_missing_unexpected_and_mismatched_keys_are_reported(reference, tmp_path, caplog):
    ref, path = reference
    state = io.read_state_dict(path)
    state.pop("transformer.h.1.mlp.c_fc.bias")
    state["transformer.extra.weight"] = np.zeros(3, np.float32)
    shutil.copy(os.path.join(path, "config.json"), tmp_path)
    io.write_state_dict(state, tmp_path)
    with caplog.at_level("WARNING", logger="flaxformers"):
        model = FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    assert "transformer/h/1/mlp/c_fc/bias" in caplog.text and "transformer.extra.weight" in caplog.text
    assert model.loading_report.unexpected == ["transformer.extra.weight"]
    assert model.params["transformer"]["h"]["1"]["mlp"]["c_fc"]["bias"].shape == (128,)

    state = io.read_state_dict(path)
    state["transformer.wpe.weight"] = np.zeros((16, 32), np.float32)
    io.write_state_dict(state, tmp_path)
    with pytest.raises(ValueError, match=r"transformer\.wpe\.weight: checkpoint \(16, 32\), model \(32, 32\)"):
        FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    model = FlaxGPT2LMHeadModel.from_pretrained(tmp_path, ignore_mismatched_sizes=True)
    assert model.params["transformer"]["wpe"]["embedding"].shape == (32, 32)


def test_do_init_false_returns_params(reference, ours):
    model, params = FlaxGPT2LMHeadModel.from_pretrained(reference[1], _do_init=False)
    with pytest.raises(ValueError, match="_do_init=False"):
        _ = model.params
    np.testing.assert_array_equal(model(IDS, params=params).logits, ours(IDS).logits)


def test_params_setter_checks_shapes(ours):
    model = FlaxGPT2LMHeadModel(ours.config)
    bad = jax.tree_util.tree_map(lambda x: x, ours.params)
    bad["transformer"]["wte"]["embedding"] = jnp.zeros((3, 3))
    with pytest.raises(ValueError, match="transformer/wte/embedding: got \\(3, 3\\), expected \\(64, 32\\)"):
        model.params = bad
    incomplete = {"transformer": {k: v for k, v in ours.params["transformer"].items() if k != "ln_f"}}
    with pytest.raises(ValueError, match="missing"):
        model.params = incomplete


def test_dtype_casts_with_mask(ours):
    mask = jax.tree_util.tree_map(lambda x: x.ndim > 1, ours.params)
    half = ours.to_fp16(ours.params, mask)
    assert half["transformer"]["wte"]["embedding"].dtype == jnp.float16
    assert half["transformer"]["ln_f"]["scale"].dtype == jnp.float32
    back = ours.to_fp32(ours.to_bf16(ours.params))
    assert back["transformer"]["wte"]["embedding"].dtype == jnp.float32


def test_init_cache_layout_matches_transformers_flax(ours):
    cache = ours.init_cache(3, 10)
    layer = cache["transformer"]["h"]["1"]["attn"]
    assert set(layer) == {"cached_key", "cached_value", "cache_index"}
    assert layer["cached_key"].shape == (3, 10, 2, 16) and int(layer["cache_index"]) == 0


def test_config_overrides_and_can_generate(reference):
    model = FlaxGPT2LMHeadModel.from_pretrained(reference[1], resid_pdrop=0.0, n_positions=32)
    assert model.config.resid_pdrop == 0.0
    assert FlaxGPT2LMHeadModel.can_generate() and not FlaxGPT2Model.can_generate()


# --- bad checkpoints -------------------------------------------------------------------------------
def test_missing_shard_error(ours, tmp_path):
    ours.save_pretrained(tmp_path, max_shard_size="20KB")
    shard = sorted(p for p in os.listdir(tmp_path) if p.startswith("model-0"))[1]
    os.remove(tmp_path / shard)
    with pytest.raises(io.CheckpointError, match=shard):
        FlaxGPT2LMHeadModel.from_pretrained(tmp_path)


def test_corrupt_safetensors_header_error(ours, tmp_path):
    ours.save_pretrained(tmp_path)
    path = tmp_path / io.SAFE_WEIGHTS_NAME
    data = bytearray(path.read_bytes())
    data[8:20] = b"not json at!"
    path.write_bytes(bytes(data))
    with pytest.raises(io.CheckpointError, match="corrupt safetensors header"):
        FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    path.write_bytes(b"\x01\x02")
    with pytest.raises(io.CheckpointError, match="truncated"):
        FlaxGPT2LMHeadModel.from_pretrained(tmp_path)


def test_config_of_another_model_type_error(tmp_path):
    transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=37).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type='bert'.*GPT2Config"):
        FlaxGPT2LMHeadModel.from_pretrained(tmp_path)


def test_no_weights_error(tmp_path):
    GPT2Config(**TINY).save_pretrained(tmp_path)
    with pytest.raises(ModelNotFoundError, match="has no weights"):
        FlaxGPT2LMHeadModel.from_pretrained(tmp_path)


def test_atomic_save_leaves_old_file_on_failure(ours, tmp_path, monkeypatch):
    ours.save_pretrained(tmp_path)
    before = (tmp_path / io.SAFE_WEIGHTS_NAME).read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("safetensors.numpy.save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        ours.save_pretrained(tmp_path)
    assert (tmp_path / io.SAFE_WEIGHTS_NAME).read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# --- configs ---------------------------------------------------------------------------------------
def test_gpt2_config_keys_aliases_and_unknown_keys(tmp_path):
    config = GPT2Config(n_embd=64, n_head=4, my_custom_key={"a": 1}, n_inner=100)
    assert config.hidden_size == 64 and config.num_attention_heads == 4 and config.max_position_embeddings == 1024
    config.hidden_size = 128
    assert config.n_embd == 128
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "gpt2" and data["my_custom_key"] == {"a": 1} and data["n_inner"] == 100
    assert GPT2Config.from_pretrained(tmp_path) == config
    ref = transformers.GPT2Config.from_pretrained(tmp_path)  # transformers reads what we write
    assert ref.n_embd == 128 and ref.n_inner == 100 and ref.reorder_and_upcast_attn is False
    ours = GPT2Config.from_dict(ref.to_dict())  # and we read every key transformers writes
    for key in ("n_inner", "activation_function", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
                "reorder_and_upcast_attn", "add_cross_attention", "tie_word_embeddings", "bos_token_id"):
        assert getattr(ours, key) == getattr(ref, key), key


@pytest.mark.parametrize("bad, match", [
    ({"n_embd": 30, "n_head": 4}, "divisible"),
    ({"activation_function": "nope"}, "activation_function"),
    ({"n_layer": 0}, "positive"),
    ({"problem_type": "ranking"}, "problem_type"),
])
def test_gpt2_config_rejects_impossible_values(bad, match):
    with pytest.raises(ValueError, match=match):
        GPT2Config(**bad)


# --- hub resolution --------------------------------------------------------------------------------
def test_hf_cache_layout_resolves_offline(reference, ours, tmp_path, monkeypatch):
    """A repo id found in the HF cache (models--org--name/snapshots/REV) loads with no network."""
    _, path = reference
    snapshot = tmp_path / "models--acme--tiny-gpt2" / "snapshots" / "abc123"
    shutil.copytree(path, snapshot)
    (tmp_path / "models--acme--tiny-gpt2" / "refs").mkdir()
    (tmp_path / "models--acme--tiny-gpt2" / "refs" / "main").write_text("abc123")
    loaded = FlaxGPT2LMHeadModel.from_pretrained("acme/tiny-gpt2", cache_dir=str(tmp_path), local_files_only=True)
    np.testing.assert_array_equal(loaded(IDS).logits, ours(IDS).logits)


def test_unknown_repo_offline_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="Pass the path of a local directory"):
        FlaxGPT2LMHeadModel.from_pretrained("acme/not-there", cache_dir=str(tmp_path), local_files_only=True)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        FlaxGPT2LMHeadModel.from_pretrained(str(tmp_path / "nope.bin"))


def test_old_gpt2_checkpoint_buffers_are_ignored_but_stray_weights_reported(reference, tmp_path):
    _, path = reference
    state = io.read_state_dict(path)
    state["transformer.h.0.attn.bias"] = np.tril(np.ones((1, 1, 32, 32), np.float32))  # causal-mask buffers
    state["transformer.h.0.attn.masked_bias"] = np.array(-1e4, np.float32)
    state["transformer.h.0.attn.q_attn.bias"] = np.zeros(32, np.float32)  # a weight we have no place for
    shutil.copy(os.path.join(path, "config.json"), tmp_path)
    io.write_state_dict(state, tmp_path)
    assert FlaxGPT2LMHeadModel.from_pretrained(tmp_path).loading_report.unexpected == [
        "transformer.h.0.attn.q_attn.bias"]


def test_push_to_hub_uploads_what_save_pretrained_writes(ours, reference, tmp_path, monkeypatch):
    """push_to_hub (models, configs, tokenizers) and save_pretrained(push_to_hub=True) go through huggingface_hub's
    create_repo + upload_folder with transformers' arguments; the uploaded folder loads in transformers."""
    from types import SimpleNamespace

    import huggingface_hub
    from _helpers import gpt2_tokenizer_dir

    from flaxformers import AutoTokenizer

    uploads = []

    def upload_folder(self, *, repo_id, folder_path, **options):
        copy = tmp_path / f"upload{len(uploads)}"
        shutil.copytree(folder_path, copy)  # the temporary directory is gone once push_to_hub returns
        uploads.append((repo_id, sorted(os.listdir(copy)), options, self.token))
        return copy

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, private=None, exist_ok=False: SimpleNamespace(repo_id=repo_id))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    uploaded = ours.push_to_hub("me/tiny-gpt2", commit_message="first", private=True, token="t0k",
                                safe_serialization=False)
    repo, files, options, token = uploads[0]
    assert (repo, token, options["commit_message"]) == ("me/tiny-gpt2", "t0k", "first")
    assert "flax_model.msgpack" in files and "config.json" in files
    again = FlaxGPT2LMHeadModel.from_pretrained(uploaded)
    for path, value in flatten(ours.params).items():
        np.testing.assert_array_equal(flatten(again.params)[path], value)

    ours.save_pretrained(tmp_path / "my-model", push_to_hub=True, commit_message="second")
    repo, files, options, _ = uploads[1]
    assert (repo, options["commit_message"]) == ("my-model", "second") and "model.safetensors" in files
    assert transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "upload1").config.n_layer == ours.config.n_layer

    (tmp_path / "tok").mkdir()
    AutoTokenizer.from_pretrained(gpt2_tokenizer_dir(tmp_path / "tok")).push_to_hub("me/tok")
    ours.config.push_to_hub("me/cfg")
    assert "tokenizer.json" in uploads[2][1] and uploads[3][1] == ["config.json"]

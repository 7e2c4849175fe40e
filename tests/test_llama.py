"""Llama and Mistral: what is their own. Parity, cache, padding, checkpoints and generate of the usual
configs go through the causal-LM harness (test_causal_lm.py); RoPE variants through test_rope.py.

Here: the RoPE keys read in both spellings, and dynamic NTK RoPE, whose frequencies follow the longest
position of each call, so a model runs past `max_position_embeddings` and cached decoding (like
transformers') differs from one full forward.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close
from test_causal_lm import _edit_config

from flaxformers import FlaxLlamaForCausalLM, LlamaConfig, MistralConfig
from flaxformers.nn.rope_config import rope_spec

TINY = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2, initializer_range=0.1)
DYNAMIC = {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 100.0}
MAX_POS, SEQ, CHUNK = 8, 16, 4  # positions run to twice max_position_embeddings


def _torch(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.long)


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory):
    """A tiny dynamic-RoPE Llama saved by transformers; each reference call reloads it, because
    transformers' rotary module remembers the longest length it has seen."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**TINY, max_position_embeddings=MAX_POS, rope_parameters=DYNAMIC)
    path = str(tmp_path_factory.mktemp("llama-dynamic"))
    transformers.LlamaForCausalLM(config).save_pretrained(path)

    def fresh_reference():
        return transformers.LlamaForCausalLM.from_pretrained(path, attn_implementation="eager").eval()

    ours = FlaxLlamaForCausalLM.from_pretrained(path)
    ids = np.random.RandomState(0).randint(3, 97, (2, SEQ)).astype(np.int32)
    return ours, fresh_reference, ids


def test_dynamic_rope_full_forward_past_max_positions(dynamic):
    ours, fresh_reference, ids = dynamic
    assert ours.config.position_limit is None  # no "past max_position_embeddings" error for dynamic RoPE
    with torch.no_grad():
        expected = fresh_reference()(_torch(ids)).logits
    assert_close(ours(ids).logits, expected, what="dynamic rope logits over 2x max positions")
    with torch.no_grad():  # the guard: stretched frequencies really differ from the unscaled ones
        short = fresh_reference()(_torch(ids[:, :MAX_POS])).logits
    assert (expected[:, :MAX_POS] - short).abs().max() > 1e-3


def test_dynamic_rope_cached_chunks_equal_transformers_cached_chunks(dynamic):
    """Each chunk's frequencies follow its own last position, in the cache and in transformers' DynamicCache."""
    ours, fresh_reference, ids = dynamic
    forward = jax.jit(ours.__call__)
    ref, past = fresh_reference(), transformers.DynamicCache()
    cache, mask = ours.init_cache(2, SEQ), np.ones((2, SEQ), np.int32)
    for start in range(0, SEQ, CHUNK):
        positions = np.broadcast_to(np.arange(start, start + CHUNK), (2, CHUNK))
        out = forward(ids[:, start:start + CHUNK], attention_mask=mask, position_ids=positions,
                      past_key_values=cache)
        cache = out.past_key_values
        with torch.no_grad():
            expected = ref(_torch(ids[:, start:start + CHUNK]), past_key_values=past, use_cache=True).logits
        assert_close(out.logits, expected, what=f"chunk at {start}")


def test_dynamic_rope_greedy_generation_past_max_positions(dynamic):
    ours, fresh_reference, ids = dynamic
    prompt, mask = ids[:, :6].copy(), np.ones((2, 6), np.int32)
    prompt[1, :2], mask[1, :2] = 0, 0  # left padding
    settings = dict(max_new_tokens=10, do_sample=False, pad_token_id=0, eos_token_id=None)
    got = ours.generate(prompt, attention_mask=mask, **settings).sequences
    with torch.no_grad():
        expected = fresh_reference().generate(_torch(prompt), attention_mask=_torch(mask), **settings)
    np.testing.assert_array_equal(np.asarray(got), expected.numpy())


@pytest.mark.parametrize("config_cls, keys_4x, keys_5", [
    (LlamaConfig, dict(rope_theta=500.0, rope_scaling={"type": "linear", "factor": 2.0}),
     dict(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0})),
    (LlamaConfig, dict(rope_theta=500.0, rope_scaling={"rope_type": "yarn", "factor": 4.0, "beta_fast": 8}),
     dict(rope_parameters={"rope_type": "yarn", "factor": 4.0, "beta_fast": 8, "rope_theta": 500.0})),
    (MistralConfig, dict(rope_theta=77.0), dict(rope_parameters={"rope_type": "default", "rope_theta": 77.0})),
])
def test_rope_keys_read_in_both_spellings_like_transformers(tmp_path, config_cls, keys_4x, keys_5):
    """A config.json in the 4.x spelling and one in transformers 5's give the spec transformers 5 reads."""
    base = dict(TINY, max_position_embeddings=64)
    config_cls(**base, **keys_5).save_pretrained(tmp_path)
    _edit_config(str(tmp_path), lambda c: (c.pop("rope_parameters"), c.pop("rope_scaling"), c.update(keys_4x)))
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    expected = rope_spec(dict(theirs.rope_parameters), theirs.head_dim, theirs.max_position_embeddings)
    assert config_cls.from_pretrained(tmp_path).rope_for("full_attention") == expected
    assert config_cls(**base, **keys_5).rope_for("full_attention") == expected


def test_mistral_sliding_window_null_means_full_attention():
    config = MistralConfig(**TINY, sliding_window=None)
    assert config.layer_types == ["full_attention"] * 2 and config.window_for("full_attention") is None
    assert MistralConfig(**TINY, sliding_window=5).window_for("sliding_attention") == 5


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_key_value_heads=3), "num_key_value_heads=3"),
    (dict(head_dim=7), "head_dim=7"),
    (dict(hidden_act="nope"), "hidden_act='nope'"),
    (dict(rope_parameters={"rope_type": "llama3", "factor": 8.0}), "low_freq_factor"),
])
def test_bad_configs_give_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LlamaConfig(**{**TINY, **kwargs})
    with pytest.raises(ValueError, match="sliding_window=0"):
        MistralConfig(**TINY, sliding_window=0)


# --- GGUF ------------------------------------------------------------------------------------------
def test_unpermuting_q_k_rows_equals_transformers_gguf_loader():
    """llama.cpp's Q/K row permutation undone, weights and (1-D) biases, as transformers' loader does."""
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from flaxformers.models.llama.gguf import unpermute_rows

    rng = np.random.default_rng(0)
    processor = LlamaTensorProcessor({"num_attention_heads": 4, "num_key_value_heads": 2})
    for name, shape, heads in (("blk.0.attn_q.weight", (32, 12), 4), ("blk.0.attn_k.weight", (16, 12), 2),
                               ("blk.0.attn_q.bias", (32,), 4), ("blk.0.attn_k.bias", (16,), 2)):
        permuted = rng.normal(size=shape).astype(np.float32)
        expected = processor.process(weights=permuted, name=name).weights
        np.testing.assert_array_equal(unpermute_rows(permuted, heads), expected, err_msg=name)
        assert not np.array_equal(expected, permuted)


def test_llama_gguf_named_mistral_reads_as_mistral(tmp_path):
    """transformers reads a `llama` GGUF whose general.name is "mistral" as a Mistral model; so do we."""
    import gguf

    from flaxformers.auto import AutoConfig

    writer = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    writer.add_name("mistral")
    for key, value in (("block_count", 1), ("embedding_length", 8), ("attention.head_count", 2), ("attention.head_count_kv", 1),
                       ("context_length", 64), ("feed_forward_length", 16)):
        writer.add_uint32(f"llama.{key}", value)
    writer.add_tensor("token_embd.weight", np.zeros((5, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    ours = AutoConfig.from_pretrained(str(tmp_path), gguf_file="m.gguf")
    theirs = transformers.AutoConfig.from_pretrained(str(tmp_path), gguf_file="m.gguf")
    assert type(ours) is MistralConfig and theirs.model_type == "mistral"
    assert ours.sliding_window == theirs.sliding_window and ours.num_hidden_layers == theirs.num_hidden_layers == 1

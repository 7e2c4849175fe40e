"""Qwen2: what is its own. Parity, cache, padding, checkpoints and generate go through the causal-LM
harness (test_causal_lm.py, case qwen2-bias-sliding); GGUF through test_gguf.py.

Here: which layers slide, as transformers reads the config keys, both ways through config.json.
"""

from __future__ import annotations

import pytest
import transformers

from flaxformers import FlaxQwen2ForCausalLM, Qwen2Config

TINY = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2)


@pytest.mark.parametrize("keys", [
    dict(),  # no window: every layer full, sliding_window written as null
    dict(use_sliding_window=True, sliding_window=8, max_window_layers=2),
    dict(use_sliding_window=True, sliding_window=8, max_window_layers=0),
    dict(use_sliding_window=False, sliding_window=8, max_window_layers=1),
    dict(use_sliding_window=True, sliding_window=8,
         layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"]),
])
def test_sliding_layers_read_like_transformers(tmp_path, keys):
    ours = Qwen2Config(**TINY, **keys)
    theirs = transformers.Qwen2Config(**TINY, **keys)
    assert ours.layer_types == theirs.layer_types and ours.sliding_window == theirs.sliding_window
    windows = [ours.window_for(t) for t in ours.layer_types]
    assert windows == [theirs.sliding_window if t == "sliding_attention" else None for t in theirs.layer_types]
    theirs.save_pretrained(tmp_path / "theirs")
    assert Qwen2Config.from_pretrained(tmp_path / "theirs").layer_types == theirs.layer_types
    ours.save_pretrained(tmp_path / "ours")
    assert transformers.AutoConfig.from_pretrained(tmp_path / "ours").layer_types == ours.layer_types


def test_qkv_biases_and_no_output_bias():
    model = FlaxQwen2ForCausalLM(Qwen2Config(**TINY), _do_init=False)
    attention = model.params_shape_tree["model"]["layers"]["0"]["self_attn"]
    assert {name for name, p in attention.items() if "bias" in p} == {"q_proj", "k_proj", "v_proj"}

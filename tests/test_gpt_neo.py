"""GPT-Neo's own: its config (attention_types expanded into one attention kind per layer, checked).

Parity, caching, padding, generation, scan and checkpoints go through tests/test_causal_lm.py.
"""

from __future__ import annotations

import json

import pytest
import transformers

from flaxformers import GPTNeoConfig


def test_attention_types_expand_like_transformers(tmp_path):
    kwargs = dict(num_layers=6, attention_types=[[["global", "local"], 2], [["local"], 2]], window_size=7)
    ours, ref = GPTNeoConfig(**kwargs), transformers.GPTNeoConfig(**kwargs)
    assert ours.attention_layers == ref.attention_layers == ["global", "local", "global", "local", "local", "local"]
    assert ours.num_hidden_layers == 6 and ours.num_attention_heads == ref.num_attention_heads
    ref.save_pretrained(tmp_path)
    loaded = GPTNeoConfig.from_pretrained(tmp_path)
    assert loaded.attention_layers == ref.attention_layers and loaded.window_size == 7
    assert json.loads(loaded.to_json_string())["attention_types"] == kwargs["attention_types"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_layers=3, attention_types=[[["global", "local"], 1]]), "expands to 2 layers, but num_layers=3"),
    (dict(num_layers=2, attention_types=[[["global", "sliding"], 1]]), r"holds \['sliding'\]"),
    (dict(num_layers=24, hidden_size=30, num_heads=4), "divisible by num_heads"),
    (dict(num_layers=24, activation_function="gelu_fancy"), "activation_function='gelu_fancy'"),
])
def test_bad_configs_give_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTNeoConfig(**kwargs)

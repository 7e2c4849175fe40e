"""Qwen3: what is its own. Parity, cache, padding, checkpoints and generate go through the causal-LM
harness (test_causal_lm.py, case qwen3-qknorm-longrope); GGUF through test_gguf.py.
"""

from __future__ import annotations

import transformers

from flaxformers import FlaxQwen3ForCausalLM, Qwen3Config
from flaxformers.registry import gguf_architectures

TINY = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2)


def test_config_defaults_and_keys_read_like_transformers(tmp_path):
    ours, theirs = Qwen3Config(**TINY), transformers.Qwen3Config(**TINY)
    assert ours.head_dim == theirs.head_dim == 128  # a free head_dim, not hidden / heads
    assert ours.layer_types == theirs.layer_types and ours.sliding_window is theirs.sliding_window is None
    Qwen3Config(**TINY, head_dim=16, attention_bias=True).save_pretrained(tmp_path)
    again = transformers.AutoConfig.from_pretrained(tmp_path)
    assert (again.model_type, again.head_dim, again.attention_bias) == ("qwen3", 16, True)


def test_qk_norms_and_bias_switch():
    for bias in (False, True):
        model = FlaxQwen3ForCausalLM(Qwen3Config(**TINY, head_dim=16, attention_bias=bias), _do_init=False)
        attention = model.params_shape_tree["model"]["layers"]["0"]["self_attn"]
        assert attention["q_norm"]["weight"].shape == attention["k_norm"]["weight"].shape == (16,)
        with_bias = {name for name, p in attention.items() if "bias" in p}
        assert with_bias == ({"q_proj", "k_proj", "v_proj", "o_proj"} if bias else set())


def test_gguf_reads_the_qwen2_byte_level_vocabulary():
    """Qwen3 files carry Qwen2's tokenizer (`tokenizer.ggml.pre = qwen2`)."""
    table = gguf_architectures()
    assert table["qwen3"].tokenizers == table["qwen2"].tokenizers
    assert "qwen2" in table["qwen3"].tokenizers["gpt2"].options["pre_tokenizers"]

"""The shared RoPE (nn/rope.py, nn/rope_config.py) against transformers 5's own computation.

Inverse frequencies and attention factors against `modeling_rope_utils`, cos/sin against
`LlamaRotaryEmbedding` (which applies the attention factor and the dynamic update), and the two
layouts, whole or partial, against transformers' Llama (rotate-half), GPT-NeoX (partial rotate-half)
and GPT-J (interleaved, partial) functions.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.gpt_neox import modeling_gpt_neox as neox
from transformers.models.gptj import modeling_gptj as gptj
from transformers.models.llama import modeling_llama as llama

from flaxformers.nn.rope import apply_rope, inv_freq, rope_cos_sin
from flaxformers.nn.rope_config import RopeSpec, rope_spec

HEAD_DIM, MAX_POS = 16, 64
VARIANTS = {
    "default": {"rope_type": "default", "rope_theta": 500.0},
    "linear": {"rope_type": "linear", "factor": 2.5, "rope_theta": 1000.0},
    "dynamic": {"rope_type": "dynamic", "factor": 3.0, "rope_theta": 1000.0},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32, "rope_theta": 500.0},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16, "rope_theta": 1000.0},
    "yarn-mscale-untruncated": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                                "mscale": 0.7, "mscale_all_dim": 0.5, "beta_fast": 16.0, "truncate": False,
                                "rope_theta": 1000.0},
    "yarn-attention-factor": {"rope_type": "yarn", "factor": 2.0, "attention_factor": 0.9,
                              "original_max_position_embeddings": 32, "rope_theta": 1000.0},
    "longrope": {"rope_type": "longrope", "original_max_position_embeddings": 16, "rope_theta": 1000.0,
                 "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.1, 3.8],
                 "long_factor": [1.5, 2.0, 2.9, 4.0, 5.5, 7.0, 9.0, 12.0]},
    "linear-partial": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000.0, "partial_rotary_factor": 0.5},
}


def _theirs(name: str) -> transformers.LlamaConfig:
    """transformers' config of a variant, its rope parameters standardised as transformers does."""
    return transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, head_dim=HEAD_DIM,
                                    max_position_embeddings=MAX_POS, rope_parameters=dict(VARIANTS[name]))


def _ours(config: transformers.LlamaConfig) -> RopeSpec:
    return rope_spec(dict(config.rope_parameters), HEAD_DIM, MAX_POS)


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("seq_len", [None, 12, 100])
def test_inv_freq_and_attention_factor_equal_transformers(name, seq_len):
    config = _theirs(name)
    rope_type = config.rope_parameters["rope_type"]
    if rope_type == "default":
        expected, factor = llama.LlamaRotaryEmbedding.compute_default_rope_parameters(config)
    else:
        expected, factor = ROPE_INIT_FUNCTIONS[rope_type](config, None, seq_len=seq_len)
    spec = _ours(config)
    ours = np.asarray(inv_freq(spec, seq_len if seq_len is not None else 0))
    np.testing.assert_allclose(ours, expected.numpy(), rtol=2e-6, atol=0)
    assert spec.attention_factor == pytest.approx(factor, rel=1e-12)
    if name == "linear-partial":
        assert spec.rotary_dim == HEAD_DIM // 2 and ours.shape == (HEAD_DIM // 4,)


@pytest.mark.parametrize("name", ["default", "dynamic", "yarn", "longrope", "llama3"])
def test_cos_sin_and_rotation_equal_llama_rotary_embedding(name):
    """Positions up to 99 > max_position_embeddings: dynamic and longrope switch to their long frequencies."""
    config = _theirs(name)
    rotary = llama.LlamaRotaryEmbedding(config)  # fresh: its dynamic state starts at max_position_embeddings
    positions = np.arange(100)[None, :]
    x = torch.randn(1, 100, HEAD_DIM, generator=torch.Generator().manual_seed(0))
    cos, sin = rotary(x, torch.tensor(positions))
    spec = _ours(config)
    our_cos, our_sin = rope_cos_sin(spec, jnp.asarray(positions), jnp.float32)
    np.testing.assert_allclose(np.asarray(our_cos), cos.numpy(), atol=2e-5)
    np.testing.assert_allclose(np.asarray(our_sin), sin.numpy(), atol=2e-5)
    q = torch.randn(1, 4, 100, HEAD_DIM, generator=torch.Generator().manual_seed(1))  # [B, N, T, H]
    expected, _ = llama.apply_rotary_pos_emb(q, q, cos, sin)
    ours = apply_rope(jnp.asarray(q.numpy().transpose(0, 2, 1, 3)), our_cos, our_sin, spec)  # [B, T, N, H]
    np.testing.assert_allclose(np.asarray(ours).transpose(0, 2, 1, 3), expected.numpy(), atol=1e-4)


def test_partial_rotate_half_equals_gpt_neox():
    """The first rotary_dim dims rotate (rotate-half within them); the rest pass through."""
    config = transformers.GPTNeoXConfig(hidden_size=64, num_attention_heads=4, rotary_pct=0.25,
                                        max_position_embeddings=MAX_POS, rope_theta=10000.0)
    rotary = neox.GPTNeoXRotaryEmbedding(config)
    positions = torch.arange(20)[None, :]
    q = torch.randn(1, 4, 20, HEAD_DIM, generator=torch.Generator().manual_seed(2))
    cos, sin = rotary(q, positions)
    expected, _ = neox.apply_rotary_pos_emb(q, q, cos, sin)
    spec = rope_spec(dict(config.rope_parameters), HEAD_DIM, MAX_POS)
    assert spec.rotary_dim == 4
    our_cos, our_sin = rope_cos_sin(spec, jnp.asarray(positions.numpy()), jnp.float32)
    ours = apply_rope(jnp.asarray(q.numpy().transpose(0, 2, 1, 3)), our_cos, our_sin, spec)
    np.testing.assert_allclose(np.asarray(ours).transpose(0, 2, 1, 3), expected.numpy(), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(ours)[..., 4:], q.numpy().transpose(0, 2, 1, 3)[..., 4:])


def test_interleaved_partial_equals_gptj():
    """GPT-J rotates pairs (2i, 2i + 1) of its first rotary_dim dims."""
    rotary_dim, positions = 8, np.arange(20)[None, :]
    x = torch.randn(1, 20, 4, HEAD_DIM, generator=torch.Generator().manual_seed(3))  # [B, T, N, H]
    sincos = gptj.create_sinusoidal_positions(MAX_POS, rotary_dim)[torch.tensor(positions)]
    sin, cos = torch.split(sincos, rotary_dim // 2, dim=-1)
    rotated = gptj.apply_rotary_pos_emb(x[..., :rotary_dim], sin, cos)
    expected = torch.cat([rotated, x[..., rotary_dim:]], dim=-1)
    spec = rope_spec({"rope_theta": 10000.0, "partial_rotary_factor": rotary_dim / HEAD_DIM}, HEAD_DIM, MAX_POS,
                     interleaved=True)
    our_cos, our_sin = rope_cos_sin(spec, jnp.asarray(positions), jnp.float32)
    ours = apply_rope(jnp.asarray(x.numpy()), our_cos, our_sin, spec)
    np.testing.assert_allclose(np.asarray(ours), expected.numpy(), atol=1e-5)


def test_rotation_runs_in_the_compute_dtype():
    spec = _ours(_theirs("yarn"))
    cos, sin = rope_cos_sin(spec, jnp.arange(6)[None], jnp.bfloat16)
    x = jnp.ones((1, 6, 2, HEAD_DIM), jnp.bfloat16)
    assert cos.dtype == sin.dtype == apply_rope(x, cos, sin, spec).dtype == jnp.bfloat16


@pytest.mark.parametrize("params, match", [
    ({"rope_type": "nope"}, "rope_type='nope'"),
    ({"rope_type": "linear"}, r"\['factor'\]"),
    ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0}, "high_freq_factor"),
    ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0}, "high_freq_factor >"),
    ({"rope_type": "longrope", "short_factor": [1.0], "long_factor": [1.0]}, "rotary_dim / 2 = 8"),
    ({"partial_rotary_factor": 0.2}, "even number"),
    ({"rope_theta": -1.0}, "rope_theta=-1.0"),
    ({"rope_type": "linear", "factor": 0}, "factor=0"),
])
def test_bad_parameters_name_the_key(params, match):
    with pytest.raises(ValueError, match=match):
        rope_spec(params, HEAD_DIM, MAX_POS)

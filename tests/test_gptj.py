"""GPT-J's own: the interleaved partial rotary embedding against transformers' functions, and its config.

Parity, caching, padding, generation, scan, checkpoints and GGUF go through tests/test_causal_lm.py and
tests/test_gguf.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from _helpers import assert_close
from transformers.models.gptj import modeling_gptj

from flaxformers import GPTJConfig
from flaxformers.nn.rope import apply_rope, rope_cos_sin
from flaxformers.nn.rope_config import RopeSpec


@pytest.mark.parametrize("rotary_dim, head_dim", [(4, 8), (8, 8), (64, 256)])
def test_interleaved_partial_rope_matches_transformers(rotary_dim, head_dim):
    rng = np.random.RandomState(0)
    x = rng.normal(size=(2, 5, 3, head_dim)).astype(np.float32)  # [B, T, N, H]
    positions = np.array([[0, 1, 2, 3, 4], [7, 300, 1500, 2000, 2047]])
    table = modeling_gptj.create_sinusoidal_positions(2048, rotary_dim)  # [P, R]: sin | cos
    sin, cos = torch.split(table[torch.tensor(positions)], rotary_dim // 2, dim=-1)
    rotated = modeling_gptj.apply_rotary_pos_emb(torch.tensor(x[..., :rotary_dim]), sin, cos)
    expected = torch.cat([rotated, torch.tensor(x[..., rotary_dim:])], dim=-1)
    spec = RopeSpec(theta=10000.0, rotary_dim=rotary_dim, interleaved=True)
    our_cos, our_sin = rope_cos_sin(spec, jnp.asarray(positions), jnp.float32)
    assert_close(apply_rope(jnp.asarray(x), our_cos, our_sin, spec), expected, what=f"rope {rotary_dim}/{head_dim}")


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_embd=32, n_head=4, rotary_dim=12), "rotary_dim=12 must be an even number of dims of a head"),
    (dict(n_embd=32, n_head=4, rotary_dim=3), "rotary_dim=3"),
    (dict(n_embd=30, n_head=4), "divisible by n_head"),
])
def test_bad_configs_give_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTJConfig(**kwargs)


def test_rotary_dim_none_rotates_the_whole_head():
    assert GPTJConfig(n_embd=32, n_head=4, rotary_dim=None).rotated_dims == 8

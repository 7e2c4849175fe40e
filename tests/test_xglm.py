"""XGLM's own: cross-attention over encoder states (`add_cross_attention`), against transformers.

Parity, caching, padding, generation, scan and checkpoints go through tests/test_causal_lm.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers import FlaxXGLMForCausalLM, XGLMConfig


def test_cross_attention_matches(tmp_path):
    torch.manual_seed(0)
    config = transformers.XGLMConfig(vocab_size=50, d_model=16, ffn_dim=24, num_layers=2, attention_heads=2,
                                     max_position_embeddings=16, add_cross_attention=True)
    ref = transformers.XGLMForCausalLM(config).eval()
    ref.save_pretrained(tmp_path)
    ours = FlaxXGLMForCausalLM.from_pretrained(tmp_path)
    assert not ours.loading_report.missing and not ours.loading_report.unexpected
    rng = np.random.RandomState(0)
    ids, states = rng.randint(3, 50, (2, 6)), rng.normal(size=(2, 5, 16)).astype(np.float32)
    encoder_mask = np.ones((2, 5), np.int32)
    encoder_mask[1, 3:] = 0
    with torch.no_grad():
        expected = ref(torch.tensor(ids), encoder_hidden_states=torch.tensor(states),
                       encoder_attention_mask=torch.tensor(encoder_mask), output_attentions=True)
    out = ours(ids, encoder_hidden_states=states, encoder_attention_mask=encoder_mask, output_attentions=True)
    assert_close(out.logits, expected.logits, what="logits with cross-attention")
    for i, (a, b) in enumerate(zip(out.cross_attentions, expected.cross_attentions)):
        assert_close(a, b, what=f"cross_attentions[{i}]")


def test_encoder_states_without_cross_attention_error():
    model = FlaxXGLMForCausalLM(XGLMConfig(vocab_size=50, d_model=16, ffn_dim=24, num_layers=1, attention_heads=2,
                                           max_position_embeddings=16), _do_init=False)
    params = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), model.params_shape_tree)  # no init compile
    with pytest.raises(ValueError, match="add_cross_attention=True"):
        model(np.ones((1, 3), np.int32), encoder_hidden_states=np.zeros((1, 2, 16), np.float32), params=params)

"""BigBird's own: random-block draws, and inputs padded to whole blocks like transformers pads them."""

from __future__ import annotations

import jax
import numpy as np
import torch
import transformers
from _helpers import assert_close

from flaxformers import FlaxBigBirdModel
from flaxformers.models.big_bird.attention import draw_random_blocks

TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20,
            max_position_embeddings=64, block_size=2, num_random_blocks=1)


def test_random_blocks_are_zero_in_eval_and_off_the_window_in_training():
    assert not np.asarray(draw_random_blocks(None, 4, 10, 2)).any()  # transformers' eval draw
    draws = np.asarray(draw_random_blocks(jax.random.PRNGKey(0), 4, 10, 2))  # [N, nb - 2, r]
    assert draws.shape == (4, 8, 2)
    for row in range(8):
        block = row + 1
        picked = draws[:, row]
        assert ((picked != 0) & (picked != 9) & (np.abs(picked - block) > 1)).all()
        assert (picked[:, 0] != picked[:, 1]).all()
    assert (draws != np.asarray(draw_random_blocks(jax.random.PRNGKey(1), 4, 10, 2))).any()


def test_input_padded_to_whole_blocks_equals_transformers(tmp_path):
    """15 tokens: block-sparse (more than 14), padded to 16 inside and cut back, in both."""
    torch.manual_seed(0)
    ref = transformers.BigBirdModel(transformers.BigBirdConfig(**TINY)).eval()
    ref.save_pretrained(tmp_path)
    ours = FlaxBigBirdModel.from_pretrained(tmp_path)
    ids = np.random.RandomState(0).randint(3, 50, (2, 15))
    mask = np.ones_like(ids)
    mask[1, -3:] = 0
    with torch.no_grad():
        expected = ref(torch.tensor(ids), attention_mask=torch.tensor(mask))
    assert ref.attention_type == "block_sparse"
    out = ours(ids, attention_mask=mask)
    assert out.last_hidden_state.shape == (2, 15, 16)
    assert_close(out.last_hidden_state, expected.last_hidden_state, what="padded block-sparse")
    assert_close(out.pooler_output, expected.pooler_output, what="pooler")

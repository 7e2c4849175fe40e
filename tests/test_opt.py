"""OPT's own: positions counted from the attention mask when none are given (transformers' default), and
the config keys transformers writes.

Parity, caching, padding with explicit positions, generation, scan and checkpoints go through
tests/test_causal_lm.py.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import transformers
from _helpers import assert_close

from flaxformers import FlaxOPTForCausalLM, OPTConfig

TINY = dict(vocab_size=50, hidden_size=16, ffn_dim=24, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=16)


def test_positions_default_to_the_mask_like_transformers(tmp_path):
    """A left-padded batch without position_ids: positions count real tokens, padding reads table row 1."""
    torch.manual_seed(0)
    ref = transformers.OPTForCausalLM(transformers.OPTConfig(**TINY)).eval()
    ref.save_pretrained(tmp_path)
    ours = FlaxOPTForCausalLM.from_pretrained(tmp_path)
    ids = np.random.RandomState(0).randint(3, 50, (2, 7))
    mask = np.ones_like(ids)
    mask[1, :3] = 0
    with torch.no_grad():
        expected = ref(torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    logits = ours(ids, attention_mask=mask).logits
    assert_close(logits[0], expected[0], what="unpadded row")
    assert_close(logits[1, 3:], expected[1, 3:], what="left-padded row")
    shifted = ours(ids, attention_mask=mask, position_ids=np.broadcast_to(np.arange(7), ids.shape)).logits
    assert np.abs(np.asarray(shifted[1, 3:]) - np.asarray(logits[1, 3:])).max() > 1e-3  # positions matter


def test_config_keys_round_trip_as_transformers_writes_them(tmp_path):
    ref = transformers.OPTConfig(**TINY, _remove_final_layer_norm=True, enable_bias=False, word_embed_proj_dim=8)
    ref.save_pretrained(tmp_path)
    ours = OPTConfig.from_pretrained(tmp_path)
    assert not ours.final_layer_norm and ours.word_embed_proj_dim == 8 and not ours.enable_bias
    ours.save_pretrained(tmp_path / "again")
    written = json.loads((tmp_path / "again" / "config.json").read_text())
    assert written["_remove_final_layer_norm"] is True
    assert transformers.OPTConfig.from_pretrained(tmp_path / "again")._remove_final_layer_norm is True
    assert OPTConfig(hidden_size=24, num_attention_heads=2).word_embed_proj_dim == 24


def test_fine_tuning_step_runs_and_its_loss_is_transformers(tmp_path):
    """The shared train step drives OPT through its `deterministic=` flag (4.57's signature has no `train=`)."""
    import optax

    from flaxformers.training import TrainState, make_train_step

    torch.manual_seed(0)
    ref = transformers.OPTForCausalLM(transformers.OPTConfig(**TINY, dropout=0.0)).eval()
    ref.save_pretrained(tmp_path)
    ours = FlaxOPTForCausalLM.from_pretrained(tmp_path)
    ids = np.random.RandomState(1).randint(3, 50, (2, 7)).astype(np.int32)
    batch = {"input_ids": ids, "attention_mask": np.ones_like(ids), "labels": ids}
    state, metrics = make_train_step(ours, optax.sgd(0.1), donate=False)(TrainState.create(ours.params, optax.sgd(0.1)),
                                                                         batch)
    with torch.no_grad():
        expected = ref(torch.tensor(ids, dtype=torch.long), labels=torch.tensor(ids, dtype=torch.long)).loss
    assert_close(metrics["loss"], expected, what="train-step loss")
    assert int(state.step) == 1

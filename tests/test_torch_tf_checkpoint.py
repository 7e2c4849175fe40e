"""A real TensorFlow checkpoint in OpenAI's GPT-2 layout, read by `load_tf_weights_in_gpt2` (needs tensorflow)."""

from __future__ import annotations

import numpy as np
import torch
import transformers
from _helpers import assert_close

import flaxformers.torch as ft

TINY = dict(vocab_size=61, n_positions=24, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)


def _openai_variables(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """transformers GPT2Model names -> OpenAI's TF names and shapes (conv kernels are [1, in, out])."""
    out = {}
    for name, tensor in state.items():
        if name.endswith(("attn.bias", "attn.masked_bias")) and "c_" not in name:
            continue
        array = tensor.numpy()
        parts = name.split(".")
        if parts[0] == "h":
            parts = [f"h{parts[1]}", *parts[2:]]
        leaf = parts[-1]
        if parts[-2] in ("wte", "wpe"):
            parts = parts[:-1]
        elif leaf == "weight":
            is_norm = parts[-2].startswith("ln")
            parts[-1] = "g" if is_norm else "w"
            if not is_norm:
                array = array[None]  # OpenAI stored conv1d kernels with a leading 1
        else:
            parts[-1] = "b"
        out["model/" + "/".join(parts)] = array
    return out


def test_tensorflow_checkpoint_round_trip(tmp_path):
    import tensorflow as tf  # an optional extra of the library; the test setup installs it
    torch.manual_seed(0)
    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config(**TINY)).eval()
    variables = _openai_variables(reference.transformer.state_dict())
    prefix = str(tmp_path / "model.ckpt")
    names = sorted(variables)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(variables[n]) for n in names])
    assert {n for n, _ in tf.train.list_variables(prefix)} == set(names)

    model = ft.GPT2LMHeadModel(ft.GPT2Config(**TINY))
    ft.load_tf_weights_in_gpt2(model, model.config, prefix)
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    with torch.no_grad():
        assert_close(model.eval()(ids).logits.numpy(), reference(ids).logits, atol=1e-5, what="TF checkpoint")
    model.save_pretrained(tmp_path / "converted")  # and on to the HF layout that both twins read
    again = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "converted").eval()
    with torch.no_grad():
        assert_close(again(ids).logits.numpy(), reference(ids).logits, atol=1e-5, what="converted")

"""What is the vision encoder-decoder's own: 4.57's encode / decode / init_cache contract, cached decoding,
and building one from an encoder and a decoder checkpoint. Parity of its outputs, loss and gradients with
transformers' VisionEncoderDecoderModel is in test_vision.py's harness."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers
from flaxformers.checkpoints.convert import flatten

B, T = 2, 6
VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32,
           patch_size=8)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=16, bos_token_id=97, eos_token_id=98)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """A tiny ViT and GPT-2 saved apart (GPT-2 without cross-attention), and a ViT-GPT-2 built from them."""
    torch.manual_seed(0)
    vit, gpt2 = tmp_path_factory.mktemp("vit"), tmp_path_factory.mktemp("gpt2")
    transformers.ViTModel(transformers.ViTConfig(**VIT)).save_pretrained(vit)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2)).save_pretrained(gpt2)
    model = flaxformers.FlaxVisionEncoderDecoderModel.from_encoder_decoder_pretrained(str(vit), str(gpt2))
    return str(vit), str(gpt2), model


def _inputs(seed: int = 0):
    rng = np.random.RandomState(seed)
    return rng.standard_normal((B, 3, 32, 32)).astype(np.float32), rng.randint(0, 97, (B, T)).astype(np.int32)


def test_from_encoder_decoder_pretrained_keeps_both_checkpoints(parts):
    vit, gpt2, model = parts
    assert model.config.decoder.add_cross_attention and model.config.decoder.is_decoder
    encoder, decoder = flaxformers.FlaxViTModel.from_pretrained(vit), flaxformers.FlaxGPT2LMHeadModel.from_pretrained(gpt2)
    ours = flatten(model.params)
    for part, loaded in (("encoder", encoder.params), ("decoder", decoder.params)):
        for path, value in flatten(loaded).items():
            np.testing.assert_array_equal(ours[(part, *path)], value)
    assert any("crossattention" in path for path in ours)  # new, at random
    assert "enc_to_dec_proj" not in model.params  # same widths


def test_encode_decode_and_cached_steps_equal_the_whole_model(parts):
    model = parts[2]
    pixels, ids = _inputs()
    full = jax.jit(model.__call__)(pixels, ids).logits  # [B, T, V]
    encoded = jax.jit(model.encode)(pixels)
    assert_close(jax.jit(model.decode)(ids, encoded).logits, np.asarray(full), what="decode(encode(...))")
    max_length = T + 2
    cache = model.init_cache(B, max_length, encoded)
    mask = np.ones((B, max_length), np.int32)
    step = jax.jit(lambda token, position, cache: model.decode(token, encoded, decoder_attention_mask=mask,
                                                               decoder_position_ids=position, past_key_values=cache))
    for t in range(T):
        out = step(ids[:, t:t + 1], np.full((B, 1), t, np.int32), cache)
        cache = out.past_key_values
        assert_close(out.logits[:, 0], np.asarray(full[:, t]), what=f"cached step {t}")


def test_clear_errors(parts):
    vit, gpt2, _ = parts
    plain = transformers.VisionEncoderDecoderConfig(encoder=transformers.ViTConfig(**VIT).to_dict(),
                                                    decoder=transformers.GPT2Config(**GPT2).to_dict())
    config = flaxformers.VisionEncoderDecoderConfig.from_dict(plain.to_dict())
    with pytest.raises(ValueError, match="add_cross_attention is False"):
        flaxformers.FlaxVisionEncoderDecoderModel(config)
    resnet = flaxformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        flaxformers.ResNetConfig(), flaxformers.GPT2Config(**GPT2))
    with pytest.raises(ValueError, match="cannot encode images here"):
        flaxformers.FlaxVisionEncoderDecoderModel(resnet)
    with pytest.raises(ValueError, match="decoder_input_ids` can't be `None`"):
        parts[2](_inputs()[0])

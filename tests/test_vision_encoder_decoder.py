"""What is the vision encoder-decoder's own: 4.57's encode / decode / init_cache contract and cached decoding,
building one from an encoder and a decoder checkpoint, and generate(pixel_values) (greedy and beam) and the
image-to-text pipeline token for token as transformers' VisionEncoderDecoderModel.generate. Parity of its
outputs, loss and gradients with transformers' VisionEncoderDecoderModel is in test_vision.py's harness."""

from __future__ import annotations

import jax
import numpy as np
import PIL.Image
import pytest
import torch
import transformers
from _helpers import assert_close, gpt2_tokenizer_dir

import flaxformers
from flaxformers.checkpoints.convert import flatten
from flaxformers.pipelines import pipeline

B, T = 2, 6
VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32,
           patch_size=8)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=16, bos_token_id=97, eos_token_id=98)
EOS = 50256  # GPT-2's <|endoftext|>


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
    full = np.asarray(jax.jit(model.__call__)(pixels, ids).logits)  # [B, T, V]
    encoded = jax.jit(model.encode)(pixels)
    assert_close(jax.jit(model.decode)(ids, encoded).logits, full, what="decode(encode(...))")
    max_length = T + 2
    cache = model.init_cache(B, max_length, encoded)
    mask = np.ones((B, max_length), np.int32)
    step = jax.jit(lambda token, position, cache: model.decode(token, encoded, decoder_attention_mask=mask,
                                                               decoder_position_ids=position, past_key_values=cache))
    for t in range(T):
        out = step(ids[:, t:t + 1], np.full((B, 1), t, np.int32), cache)
        cache = out.past_key_values
        assert_close(out.logits[:, 0], full[:, t], what=f"cached step {t}")


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
    with pytest.raises(ValueError, match="generate.. needs the prompt: pass pixel_values"):
        parts[2].generate(max_new_tokens=2)


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    """transformers' ViT->GPT-2 (random, wide weights: distinct tokens; GPT-2's vocabulary, its
    <|endoftext|> as start, eos and pad) saved with a ViT image processor and GPT-2's tokenizer; ours
    loaded from it."""
    directory = tmp_path_factory.mktemp("vit-gpt2")
    gpt2_tokenizer_dir(directory)
    torch.manual_seed(0)
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        transformers.ViTConfig(**VIT, initializer_range=0.5),
        transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=16, initializer_range=0.5))
    config.decoder_start_token_id = EOS
    ref = transformers.VisionEncoderDecoderModel(config).eval()
    with torch.no_grad():  # a likelier eos: rows end at different steps
        ref.decoder.transformer.wte.weight[EOS] *= 1.5
    ref.save_pretrained(directory)
    transformers.ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(directory)
    return str(directory), ref, flaxformers.FlaxVisionEncoderDecoderModel.from_pretrained(directory)


@pytest.mark.parametrize("options", [{}, {"num_beams": 3, "num_return_sequences": 2, "length_penalty": 0.5}])
def test_generate_equals_transformers(captioner, options):
    _, ref, model = captioner
    pixels = _inputs()[0]
    with torch.no_grad():
        expected = ref.generate(torch.from_numpy(pixels), max_new_tokens=8, **options).numpy()
    ours = np.asarray(model.generate(pixel_values=pixels, max_new_tokens=8, **options).sequences)
    # transformers trims to the longest row; ours keeps the budget, filled with the pad token (the eos here)
    np.testing.assert_array_equal(ours[:, :expected.shape[1]], expected)
    assert np.all(ours[:, expected.shape[1]:] == EOS)


def test_generation_config_falls_back_to_the_decoders(captioner):
    ours = flaxformers.GenerationConfig.from_model_config(captioner[2].config)
    ref = transformers.GenerationConfig.from_model_config(captioner[1].config)
    for key in ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(ours, key) == getattr(ref, key), key


def test_image_to_text_pipeline(captioner):
    directory, ref, model = captioner
    images = [PIL.Image.fromarray(np.random.RandomState(i).randint(0, 256, (40, 30, 3), dtype=np.uint8))
              for i in range(2)]
    pixels = transformers.ViTImageProcessorPil.from_pretrained(directory)(images, return_tensors="pt").pixel_values
    with torch.no_grad():
        expected = ref.generate(pixels, max_new_tokens=8).numpy()
    tokenizer = transformers.GPT2Tokenizer.from_pretrained(directory)
    # our loaded model: its compiled greedy plan is test_generate_equals_transformers'
    pipe = pipeline("image-to-text", model=model, tokenizer=directory, image_processor=directory)
    assert pipe(images, max_new_tokens=8, batch_size=2) == [
        [{"generated_text": tokenizer.decode(row, skip_special_tokens=True)}] for row in expected]

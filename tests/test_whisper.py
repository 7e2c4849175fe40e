"""Whisper against transformers' PyTorch classes on one tiny random checkpoint (2 layers, d_model 32).

Whisper's source is log-mel features, not tokens, so it has its own file beside the seq2seq harness. The
vocabulary is the tiny tokenizer's (`tokenizer_dir`), in a multilingual checkpoint's layout: 256 bytes and 5
merges, eos/pad 261, start 262, the languages from 263 (en 263, de 265, fr 269), translate 363, transcribe
364, no-timestamps 368, then 20 timestamps 369-388.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers
from flaxformers.auto import FlaxAutoModelForSpeechSeq2Seq
from flaxformers.checkpoints.convert import flatten

MEL, FRAMES, TGT = 8, 32, 5
TINY = dict(vocab_size=389, num_mel_bins=MEL, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=40, decoder_ffn_dim=40, d_model=32,
            max_source_positions=FRAMES // 2, max_target_positions=32, pad_token_id=261, bos_token_id=261,
            eos_token_id=261, decoder_start_token_id=262, suppress_tokens=[3, 368], begin_suppress_tokens=[5, 261],
            classifier_proj_size=12, num_labels=3)
GENERATION = dict(lang_to_id={"<|en|>": 263, "<|fr|>": 269, "<|de|>": 265},
                  task_to_id={"translate": 363, "transcribe": 364}, no_timestamps_token_id=368, is_multilingual=True,
                  decoder_start_token_id=262, eos_token_id=261, pad_token_id=261, suppress_tokens=[3, 368],
                  begin_suppress_tokens=[5, 261], max_initial_timestamp_index=6)
FEATURES = np.random.RandomState(0).normal(size=(2, MEL, FRAMES)).astype(np.float32)
TARGET = np.random.RandomState(1).randint(0, 261, (2, TGT)).astype(np.int32)


def _torch(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The checkpoint transformers saved (norms randomised), both sides loaded, and one forward each."""
    torch.manual_seed(0)
    ref = transformers.WhisperForConditionalGeneration(transformers.WhisperConfig(**TINY)).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "norm" in name:
                p.normal_(1.0 if "weight" in name else 0.0, 0.5)
    ref.generation_config = transformers.GenerationConfig(**GENERATION)
    path = str(tmp_path_factory.mktemp("whisper"))
    ref.save_pretrained(path)
    ref = transformers.WhisperForConditionalGeneration.from_pretrained(path, attn_implementation="eager").eval()
    ours = FlaxAutoModelForSpeechSeq2Seq.from_pretrained(path)
    assert type(ours) is flaxformers.FlaxWhisperForConditionalGeneration
    out = ours(FEATURES, decoder_input_ids=TARGET, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        expected = ref(_torch(FEATURES), decoder_input_ids=_torch(TARGET), output_hidden_states=True,
                       output_attentions=True)
    return path, ref, ours, out, expected


def test_logits_hidden_states_attentions_match(tiny):
    _, _, _, out, expected = tiny
    assert_close(out.logits, expected.logits, what="logits")
    assert_close(out.encoder_last_hidden_state, expected.encoder_last_hidden_state, what="encoder_last_hidden_state")
    for field in ("encoder_hidden_states", "decoder_hidden_states", "encoder_attentions", "decoder_attentions",
                  "cross_attentions"):
        ours, ref = getattr(out, field), getattr(expected, field)
        assert len(ours) == len(ref), field
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_close(a, b, what=f"{field}[{i}]")


def test_loss_with_labels_matches(tiny):
    """Decoder inputs are the labels shifted right from the start token; -100 is ignored."""
    _, ref, ours, _, _ = tiny
    from flaxformers.training.losses import get_task_loss

    labels = TARGET.copy()
    labels[1, TGT - 2:] = -100
    outputs = ours(FEATURES, decoder_input_ids=ours.prepare_decoder_input_ids_from_labels(labels))
    loss = get_task_loss("seq2seq-lm")(outputs, {"labels": labels}, ours.config)
    with torch.no_grad():
        expected = ref(_torch(FEATURES), labels=_torch(labels).long()).loss
    assert_close(loss, expected, what="loss")


@pytest.mark.parametrize("head, weighted", [("WhisperModel", False), ("WhisperForAudioClassification", True)])
def test_heads_match(tiny, tmp_path, head, weighted):
    path = tiny[0]
    torch.manual_seed(1)
    ref = getattr(transformers, head).from_pretrained(path, use_weighted_layer_sum=weighted,
                                                      attn_implementation="eager").eval()
    if weighted:  # transformers starts them equal, which would hide a wrong order
        with torch.no_grad():
            ref.layer_weights.normal_()
    ref.save_pretrained(tmp_path)
    ours = getattr(flaxformers, "Flax" + head).from_pretrained(tmp_path)
    with torch.no_grad():
        if head == "WhisperModel":
            expected = ref(_torch(FEATURES), decoder_input_ids=_torch(TARGET)).last_hidden_state
            got = ours(FEATURES, decoder_input_ids=TARGET).last_hidden_state
        else:
            expected = ref(_torch(FEATURES)).logits
            got = ours(FEATURES).logits
    assert_close(got, expected, what=f"{head} output")


def test_encode_then_cached_decode_equals_full_forward(tiny):
    _, _, ours, out, expected = tiny
    encoder_outputs = ours.encode(FEATURES)
    assert_close(encoder_outputs.last_hidden_state, expected.encoder_last_hidden_state, what="encode")
    cache = ours.init_cache(2, TGT, encoder_outputs)
    step = jax.jit(lambda ids, cache, positions: ours.decode(
        ids, encoder_outputs, past_key_values=cache, decoder_attention_mask=np.ones((2, TGT), np.int32),
        decoder_position_ids=positions))
    logits = []
    for t in range(TGT):
        out = step(TARGET[:, t:t + 1], cache, np.full((2, 1), t, np.int32))
        logits.append(np.asarray(out.logits))
        cache = out.past_key_values
    assert_close(np.concatenate(logits, axis=1), expected.logits, what="cached decode vs full")


def test_save_then_load_in_transformers_and_msgpack(tiny, tmp_path):
    _, _, ours, out, _ = tiny
    ours.save_pretrained(tmp_path / "pt")
    reloaded, info = transformers.WhisperForConditionalGeneration.from_pretrained(tmp_path / "pt",
                                                                                 output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    with torch.no_grad():
        expected = reloaded.eval()(_torch(FEATURES), decoder_input_ids=_torch(TARGET)).logits
    assert_close(out.logits, expected, what="transformers reload")
    with open(tmp_path / "pt" / "config.json") as f:
        assert json.load(f)["architectures"] == ["WhisperForConditionalGeneration"]
    ours.save_pretrained(tmp_path / "msgpack", safe_serialization=False)
    assert "flax_model.msgpack" in os.listdir(tmp_path / "msgpack")
    again = type(ours).from_pretrained(tmp_path / "msgpack")
    for key, value in flatten(ours.params).items():
        np.testing.assert_array_equal(flatten(again.params)[key], value)


def test_bad_features_name_the_expected_shape(tiny):
    with pytest.raises(ValueError, match="num_mel_bins=8"):
        tiny[2](FEATURES[:, :, :10], decoder_input_ids=TARGET)


# --- generate: Whisper's prompt (language, task, no-timestamps), suppression; greedy and beam ---------
GENERATE_CASES = [
    (dict(language="fr", task="translate"), 1),
    (dict(language="german"), 3),
    (dict(return_timestamps=True), 1),  # the language detected from the audio; the timestamp rules
]


def _assert_same_new_tokens(ours, expected: np.ndarray, max_new_tokens: int) -> None:
    """4.57 returned the prompt too (transformers 5 returns the new tokens only), and keeps the budget."""
    new = np.asarray(ours)[:, -max_new_tokens:]
    np.testing.assert_array_equal(new[:, :expected.shape[1]], expected)
    assert np.all(new[:, expected.shape[1]:] == 261)


def _assert_same_joined_segments(ours, expected: np.ndarray, prompt_len: int) -> None:
    """With timestamps transformers 5 decodes window after window (a window's unfinished segment is decoded
    again from its start) and returns the segments' tokens end to end; ours has the prompt first."""
    ours = np.asarray(ours)
    assert ours.shape[1] == prompt_len + expected.shape[1]
    np.testing.assert_array_equal(ours[:, prompt_len:], expected)


def _closed_segments(tokens: np.ndarray) -> int:
    timestamps = tokens >= GENERATION["no_timestamps_token_id"] + 1
    return int(np.sum(timestamps[1:] & timestamps[:-1]))


@pytest.mark.parametrize("settings, num_beams", GENERATE_CASES)
def test_generate_matches_transformers(tiny, settings, num_beams):
    _, ref, ours, _, _ = tiny
    got = np.asarray(ours.generate(FEATURES, max_new_tokens=8, num_beams=num_beams, **settings).sequences)
    with torch.no_grad():
        expected = ref.generate(_torch(FEATURES), max_new_tokens=8, num_beams=num_beams, **settings).numpy()
    if settings.get("return_timestamps"):
        _assert_same_joined_segments(got, expected, 2)  # start and the detected language
        assert all(_closed_segments(row) >= 2 for row in expected), "the loop must have several segments to join"
    else:
        _assert_same_new_tokens(got, expected, 8)
    if "language" not in settings:
        with torch.no_grad():
            detected = ref.detect_language(_torch(FEATURES), generation_config=ref.generation_config).numpy()
        np.testing.assert_array_equal(ours.detect_language(FEATURES), detected)
        np.testing.assert_array_equal(got[:, 1], detected)


def test_forced_decoder_ids_are_the_prompt(tiny):
    """4.57's forced_decoder_ids ([[1, lang], [2, task], [3, notimestamps]]) give transformers 5's prompt."""
    _, ref, ours, _, _ = tiny
    got = ours.generate(FEATURES, max_new_tokens=8, forced_decoder_ids=[[1, 265], [2, 364], [3, 368]]).sequences
    with torch.no_grad():
        expected = ref.generate(_torch(FEATURES), max_new_tokens=8, language="de", task="transcribe").numpy()
    np.testing.assert_array_equal(np.asarray(got)[:, :4], [[262, 265, 364, 368]] * 2)
    _assert_same_new_tokens(got, expected, 8)


# --- long-form: transformers 5's sequential decoding over several windows ----------------------------------
LONG = np.random.RandomState(1).normal(size=(2, MEL, 80)).astype(np.float32)  # 2.5 windows, and 1.75
LONG_MASK = np.ones((2, 80), np.int32)
LONG_MASK[1, 56:] = 0
LONG[1, :, 56:] = 0


def _segments(rows) -> list[list[tuple]]:
    return [[(round(float(s["start"]), 9), round(float(s["end"]), 9), np.asarray(s["tokens"]).tolist()) for s in row]
            for row in rows]


def _long_form(tiny, **settings) -> tuple:
    """Ours and transformers' generate on the long batch, with segments; their segments must be equal."""
    _, ref, ours, _, _ = tiny
    got = ours.generate(LONG, attention_mask=LONG_MASK, max_new_tokens=8, return_segments=True, **settings)
    with torch.no_grad():
        expected = ref.generate(_torch(LONG), attention_mask=_torch(LONG_MASK), max_new_tokens=8,
                                return_segments=True, **settings)
    assert _segments(got.segments) == _segments(expected["segments"])
    _assert_same_joined_segments(got.sequences, expected["sequences"].numpy(), 2)
    return got, expected


@pytest.mark.parametrize("num_beams, condition", [(1, False), (3, False), (1, True)])
def test_long_form_matches_transformers(tiny, monkeypatch, num_beams, condition):
    """A batch of 2.5 and 1.75 windows (its attention_mask), greedy and beam, and conditioned on the previous
    text: segments (times, tokens) and the joined sequences equal transformers 5's, across windows that start
    at the last closed segment's end."""
    from flaxformers.models.whisper import long_form

    prompts = []
    _spy(monkeypatch, long_form, "decoder_prompts", prompts, lambda result, *a: result[0].shape[1])
    settings = dict(condition_on_prev_tokens=True, temperature=(0.0,)) if condition else {}
    got, _ = _long_form(tiny, num_beams=num_beams, **settings)
    ends = [[s["end"] for s in row] for row in got.segments]
    assert all(len(row) >= 4 for row in ends) and len(prompts) >= 3, (ends, prompts)  # several segments and windows
    assert max(prompts) > 3 if condition else set(prompts) == {2}  # previous text before start, language


def test_left_padded_decoder_prompts_match_transformers(tiny):
    """Decoder prompts of different lengths (previous text under condition_on_prev_tokens, in a batch),
    left-padded with their decoder_attention_mask: greedy tokens equal transformers' and each row's alone
    (without the mask row 0 differs), 3-beam sequences and scores equal transformers'."""
    _, ref, ours, _, _ = tiny
    prompts = np.array([[261, 261, 360, 50, 51, 262, 263, 364, 368], [360, 40, 41, 42, 43, 262, 263, 364, 368]])
    mask = (prompts != 261).astype(np.int32)
    inputs = dict(decoder_input_ids=prompts, decoder_attention_mask=mask, max_new_tokens=8)
    torch_prompt = dict(decoder_input_ids=_torch(prompts), decoder_attention_mask=_torch(mask))
    with torch.no_grad():
        expected = ref.generate(_torch(FEATURES), **torch_prompt, max_new_tokens=8).numpy()
        beams = ref.generate(_torch(FEATURES), **torch_prompt, max_new_tokens=8, num_beams=3, output_scores=True,
                             return_dict_in_generate=True)
    got = np.asarray(ours.generate(FEATURES, **inputs).sequences)
    np.testing.assert_array_equal(got[:, prompts.shape[1]:], expected)
    for row, start in enumerate([2, 0]):
        alone = ours.generate(FEATURES[row:row + 1], decoder_input_ids=prompts[row:row + 1, start:], max_new_tokens=8)
        np.testing.assert_array_equal(np.asarray(alone.sequences)[0, 9 - start:], expected[row])
    unmasked = np.asarray(ours.generate(FEATURES, decoder_input_ids=prompts, max_new_tokens=8).sequences)
    assert not np.array_equal(unmasked[0, 9:], expected[0])
    got = ours.generate(FEATURES, **inputs, num_beams=3)
    np.testing.assert_array_equal(np.asarray(got.sequences), beams.sequences.numpy())  # the prompt included
    assert_close(got.scores, beams.sequences_scores.numpy(), what="beam scores")
    with pytest.raises(ValueError, match="right-padded"):
        ours.generate(FEATURES, decoder_input_ids=prompts, decoder_attention_mask=mask[:, ::-1].copy())


@pytest.mark.parametrize("prompt_condition_type", ["first-segment", "all-segments"])
def test_previous_text_prompt_matches_transformers(prompt_condition_type):
    """condition_on_prev_tokens: the next window's decoder prompt (<|startofprev|> or the prompt, the last
    max_target_positions // 2 - 1 tokens, a closing double timestamp once) as transformers 5 builds it."""
    from transformers.models.whisper.generation_whisper import WhisperGenerationMixin

    from flaxformers.models.whisper import long_form

    tb, prompt = GENERATION["no_timestamps_token_id"] + 1, np.array([3, 100, 101])
    rows = [[[tb, 40, 41, tb + 3, tb + 3], [tb + 3, *range(42, 49), tb + 5, tb + 5], [tb + 5, 49, 50, tb + 7]],
            [[tb + 1, 50, 51, tb + 2, tb + 2]]]  # over the 15 kept tokens, and under: left-padded to the longest
    init = np.array([[262, 263, 364]] * 2)
    config = transformers.GenerationConfig(pad_token_id=261, prompt_condition_type=prompt_condition_type)
    with torch.no_grad():
        expected, kwargs = WhisperGenerationMixin._prepare_decoder_input_ids(
            2, _torch(init), [[{"tokens": torch.tensor(t)} for t in row] for row in rows], [0, 1], [True, True],
            _torch(prompt), config, transformers.WhisperConfig(**TINY), "cpu", torch.tensor(TINY["suppress_tokens"]),
            tb, {})
    settings = long_form.LongFormSettings(
        temperatures=(0.0,), compression_ratio_threshold=None, logprob_threshold=None, no_speech_threshold=None,
        condition_on_prev_tokens=True, prompt_ids=prompt, prompt_segment=prompt[1:],
        prompt_condition_type=prompt_condition_type, num_segment_frames=FRAMES, input_stride=2, time_precision=0.02,
        time_precision_features=0.01, timestamp_begin=tb, max_target_positions=TINY["max_target_positions"],
        vocab_size=TINY["vocab_size"])
    segments = [[{"tokens": np.array(t)} for t in row] for row in rows]
    got, mask = long_form.decoder_prompts(init, [0, 1], segments, [True, True], settings, TINY["suppress_tokens"][-2],
                                          261)
    np.testing.assert_array_equal(got, expected.numpy())
    np.testing.assert_array_equal(mask, kwargs["decoder_attention_mask"].numpy())
    assert not mask.all()


def _spy(monkeypatch, owner, name: str, record: list, what) -> None:
    """Record `what(result, *args)` of each call to `owner.name` (transformers' own decisions and values)."""
    original = getattr(owner, name)
    static = isinstance(owner.__dict__.get(name), staticmethod)

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        record.append(what(result, *args))
        return result

    monkeypatch.setattr(owner, name, staticmethod(spy) if static else spy)


def _midpoint(values: list[float]) -> float:
    """A threshold in the widest gap between the middle values, so some windows fall on each side."""
    v = sorted(set(values))
    v = v[1:-1] if len(v) > 3 else v
    i = int(np.argmax(np.diff(v)))
    return (v[i] + v[i + 1]) / 2


def test_no_speech_windows_are_skipped_as_in_transformers(tiny, monkeypatch):
    """A window whose <|nospeech|> probability beats no_speech_threshold (and whose log-probability is low)
    is skipped: the threshold set between transformers' probabilities skips some windows, not all."""
    from transformers.generation.logits_process import WhisperNoSpeechDetection
    from transformers.models.whisper.generation_whisper import WhisperGenerationMixin

    probs, decisions = [], []
    _spy(monkeypatch, WhisperNoSpeechDetection, "__call__", probs, lambda _, self, *a: self._no_speech_prob.tolist())
    with torch.no_grad():
        tiny[1].generate(_torch(LONG), attention_mask=_torch(LONG_MASK), max_new_tokens=8, temperature=(0.0,),
                         logprob_threshold=-100.0, no_speech_threshold=1.0)
    threshold = _midpoint([p for step in probs for p in step])
    _spy(monkeypatch, WhisperGenerationMixin, "_need_fallback", decisions, lambda result, *a: result[1])
    _long_form(tiny, temperature=(0.0,), logprob_threshold=0.0, no_speech_threshold=threshold)
    assert any(decisions) and not all(decisions), decisions


@pytest.mark.parametrize("threshold, num_beams", [("logprob_threshold", 1), ("logprob_threshold", 3),
                                                   ("compression_ratio_threshold", 1)])
def test_fallback_decisions_match_transformers(tiny, monkeypatch, threshold, num_beams):
    """With a threshold between transformers' values some windows fail it and are decoded again (greedy at
    temperature 0 twice, so the tokens stay comparable): the same windows as transformers', counted by
    decode calls on both sides."""
    from transformers.generation.utils import GenerationMixin
    from transformers.models.whisper.generation_whisper import WhisperGenerationMixin

    import flaxformers.generation.mixin as mixin

    values, ref_calls, our_calls = [], [], []
    name = "_retrieve_avg_logprobs" if threshold == "logprob_threshold" else "_retrieve_compression_ratio"
    _spy(monkeypatch, WhisperGenerationMixin, name, values, lambda result, *a: float(result))
    with torch.no_grad():
        tiny[1].generate(_torch(LONG), attention_mask=_torch(LONG_MASK), max_new_tokens=8, temperature=(0.0,),
                         num_beams=num_beams, **{threshold: -100.0 if threshold == "logprob_threshold" else 100.0})
    _spy(monkeypatch, GenerationMixin, "generate", ref_calls, lambda *a: 1)
    _spy(monkeypatch, mixin.GenerationMixin, "generate", our_calls, lambda *a: 1)
    # the tiny model's 8-token windows all compress alike: a ratio threshold just below sends them all back
    limit = _midpoint(values) if threshold == "logprob_threshold" else min(values) - 0.01
    _long_form(tiny, temperature=(0.0, 0.0), num_beams=num_beams, **{threshold: limit})
    windows = 3  # 2.5 windows, decoded from segment ends: at least 3 decodes without fallback
    assert len(ref_calls) > windows and len(our_calls) == len(ref_calls), (our_calls, ref_calls)


# --- feature extractor and tokenizer -------------------------------------------------------------------
def test_feature_extractor_matches_transformers():
    """Padded to 30 s (and truncated), normalised or not, with the frame mask; and padding='longest'."""
    from flaxformers import WhisperFeatureExtractor

    rng = np.random.RandomState(0)
    seconds = np.arange(16000 * 3) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * seconds) + 0.05 * rng.normal(size=seconds.shape)).astype(np.float32)
    audio = [tone, 0.1 * rng.normal(size=40_001).astype(np.float32)]
    ref, ours = transformers.WhisperFeatureExtractor(), WhisperFeatureExtractor()
    audio.append(0.1 * rng.normal(size=16000 * 31 + 123).astype(np.float32))  # longer than 30 s: long form's input
    for settings in ({}, {"do_normalize": True, "return_attention_mask": True},
                     {"padding": "longest", "return_attention_mask": True}, {"max_length": 16000},
                     {"truncation": False, "padding": "longest", "return_attention_mask": True}):
        expected = ref(audio, sampling_rate=16000, return_tensors="np", **settings)
        got = ours(audio, sampling_rate=16000, **settings)
        assert_close(got["input_features"], expected["input_features"], what=f"log-mel {settings}")
        if "attention_mask" in expected:
            np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"])


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> str:
    """A tiny byte-level BPE with Whisper's special tokens (every language, so ids follow Whisper's layout)
    and 20 timestamp tokens, saved as tokenizer.json."""
    import tokenizers
    from tokenizers import AddedToken, decoders, models, pre_tokenizers

    from flaxformers.models.whisper.generation import LANGUAGES

    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("o", "n")]
    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update({a + b: len(vocab) + i for i, (a, b) in enumerate(merges)})
    backend = tokenizers.Tokenizer(models.BPE(vocab, merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{code}|>" for code in LANGUAGES), "<|translate|>",
                "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    backend.add_special_tokens([AddedToken(s, special=True) for s in specials])
    backend.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", special=False) for i in range(20)])
    path = str(tmp_path_factory.mktemp("whisper-tokenizer"))
    backend.save(os.path.join(path, "tokenizer.json"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "WhisperTokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                   "additional_special_tokens": specials[1:]}, f)
    return path


def test_tokenizer_prefix_and_timestamps_match_transformers(tokenizer_dir):
    ref = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    ours = flaxformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    assert type(ours).__name__ == "WhisperTokenizer"
    text = "the cat on a hat"
    assert ours.encode(text) == ref(text).input_ids
    for language, task in (("fr", "transcribe"), ("german", "translate")):
        ref.set_prefix_tokens(language=language, task=task)
        ours.set_prefix_tokens(language=language, task=task)
        assert ours.encode(text) == ref(text).input_ids
    assert ours.get_decoder_prompt_ids(task="transcribe", language="en") == [
        tuple(x) for x in ref.get_decoder_prompt_ids(task="transcribe", language="en")]
    ts = ours.timestamp_begin
    words = lambda text: ours.encode(text, add_special_tokens=False)  # noqa: E731
    # two segments, then a timestamp going back: the next 30 s window
    sequence = [ours.convert_tokens_to_ids("<|startoftranscript|>"), ts, *words(" the cat"), ts + 5, ts + 5,
                *words(" on a hat"), ts + 12, ts + 2, *words(" the"), ts + 4, ours.eos_token_id]
    for settings in ({}, {"skip_special_tokens": True}, {"decode_with_timestamps": True}, {"output_offsets": True}):
        assert ours.decode(sequence, **settings) == ref.decode(sequence, **settings), settings


@pytest.fixture(scope="module")
def asr(tiny, tokenizer_dir, tmp_path_factory) -> tuple[str, object]:
    """The tiny checkpoint with the tokenizer and a feature extractor whose 1 s window is the encoder's 32
    frames, and our pipeline loaded from that directory."""
    import shutil

    path = str(tmp_path_factory.mktemp("whisper-asr"))
    shutil.copytree(tiny[0], path, dirs_exist_ok=True)
    shutil.copytree(tokenizer_dir, path, dirs_exist_ok=True)
    transformers.WhisperFeatureExtractor(feature_size=MEL, chunk_length=1, hop_length=500).save_pretrained(path)
    return path, flaxformers.pipeline("automatic-speech-recognition", model=path)


SPEECH = [(0.3 * np.sin(2 * np.pi * 330 * np.arange(11000) / 16000)).astype(np.float32),
          (0.1 * np.random.RandomState(5).normal(size=16000)).astype(np.float32)]
SETTINGS = {"max_new_tokens": 8, "language": "en"}


def test_pipeline_matches_transformers(asr):
    """pipeline("automatic-speech-recognition") on a Whisper directory: features, generate, decoded text."""
    path, ours = asr
    expected = transformers.pipeline("automatic-speech-recognition", model=path)(SPEECH, generate_kwargs=SETTINGS)
    assert ours(SPEECH, generate_kwargs=SETTINGS) == expected and expected[0]["text"]


@pytest.mark.parametrize("generate_kwargs", [{}, {"max_new_tokens": 8}, {"num_beams": 1, "max_length": 12},
                                             {"do_sample": True, "top_k": 4}])
def test_pipeline_adds_transformers_generation_defaults(asr, generate_kwargs):
    """What the pipeline adds to generate's arguments (5 beams and 256 new tokens where the model's generation
    config is silent, the pad token) is what transformers 5's pipeline adds, on the same directory."""
    from flaxformers.pipelines.automatic_speech_recognition import GENERATION_DEFAULTS
    from flaxformers.pipelines.base import with_generation_defaults

    path, ours = asr
    expected = transformers.pipeline("automatic-speech-recognition", model=path)._prepare_generate_kwargs(
        dict(generate_kwargs))
    assert with_generation_defaults(generate_kwargs, GENERATION_DEFAULTS, ours.model, ours.tokenizer) == expected


LONG_SPEECH = np.concatenate([SPEECH[1], SPEECH[0], SPEECH[1][:8000]])  # 2.2 windows


def test_pipeline_long_form_matches_transformers(asr):
    """Audio longer than the window (here 1 s) is decoded window after window, as transformers 5's pipeline
    does it (whole features, sequential long form); one of a window stays short-form beside it."""
    path, ours = asr
    expected = transformers.pipeline("automatic-speech-recognition", model=path)(
        [LONG_SPEECH, SPEECH[0]], generate_kwargs=SETTINGS, return_timestamps=True)
    assert ours([LONG_SPEECH, SPEECH[0]], generate_kwargs=SETTINGS, return_timestamps=True) == expected
    assert len(expected[0]["chunks"]) >= 3, "the long audio must make several segments"


def test_transcribe_command_streams_the_text(asr, tmp_path, capsys, monkeypatch):
    """`flaxformers transcribe` on a 48 kHz WAV file (resampled to 16 kHz) longer than a window: decoded
    window after window, each window's text streamed; --timestamps prints the segments' times (the
    pipeline's loaded model: its compiled loop serves the stream too)."""
    from scipy.io import wavfile

    import flaxformers.cli.transcribe as transcribe
    from flaxformers.audio import load_audio
    from flaxformers.cli import main

    path, pipe = asr
    monkeypatch.setattr(transcribe, "_load", lambda _: (pipe.model, pipe.tokenizer, pipe.feature_extractor))
    wave = LONG_SPEECH
    high = np.interp(np.arange(3 * len(wave)) / 3, np.arange(len(wave)), wave)
    wavfile.write(tmp_path / "speech.wav", 48000, (high * 32767).astype(np.int16))
    command = ["transcribe", "--model", path, "--language", "en", "--max-new-tokens", "8", str(tmp_path / "speech.wav")]
    assert main(command) == 0
    audio = load_audio(tmp_path / "speech.wav", 16000)
    features = transformers.WhisperFeatureExtractor.from_pretrained(path)(
        audio, sampling_rate=16000, truncation=False, padding="longest", return_tensors="pt")
    with torch.no_grad():
        segments = tiny_model(path).generate(features.input_features, return_segments=True, **SETTINGS)["segments"][0]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    texts = [tokenizer.decode(s["tokens"], skip_special_tokens=True) for s in segments]
    assert capsys.readouterr().out == "".join(texts) + "\n"
    assert main([*command, "--timestamps"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"[{float(s['start']):.2f} -> {float(s['end']):.2f}]{text}" for s, text in zip(segments, texts)]
    assert len(segments) >= 3


def tiny_model(path: str):
    return transformers.WhisperForConditionalGeneration.from_pretrained(path, attn_implementation="eager").eval()

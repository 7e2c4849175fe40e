"""generate() against transformers 5.x PyTorch generate on the same tiny random GPT-2 weights."""

from __future__ import annotations

import json
import os
from collections import Counter

import jax
import numpy as np
import pytest
import torch
import transformers

from flaxformers import FlaxGPT2LMHeadModel, FlaxGPT2Model, GenerationConfig
from flaxformers.generation import engine

EOS = 98
NEW = 10  # new tokens in most tests: tests that share a plan share its compiled loop
# A wide initializer spreads the logits, so fp32 rounding never decides an argmax.
TINY = dict(vocab_size=99, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.5,
            bos_token_id=EOS, eos_token_id=EOS)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    ref = transformers.GPT2LMHeadModel(transformers.GPT2Config(**TINY)).eval()
    path = tmp_path_factory.mktemp("tiny_gpt2")
    ref.save_pretrained(path)
    return ref, FlaxGPT2LMHeadModel.from_pretrained(str(path)), str(path)


@pytest.fixture(scope="module")
def compiles():
    """Counts XLA compilations (every backend compile emits this event)."""
    counter = Counter()

    def listener(name, duration, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            counter["n"] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield counter
    jax.monitoring.unregister_event_duration_listener(listener)


def _prompts(batch=3, seq=7, seed=0, pad=EOS, left_pad=(3, 1, 0)):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, EOS, (batch, seq)).astype(np.int32)
    mask = np.ones_like(ids)
    for row, n in enumerate(left_pad[:batch]):
        mask[row, :n] = 0
        ids[row, :n] = pad
    return ids, mask


def _torch_generate(ref, ids, mask, **kwargs):
    with torch.no_grad():
        out = ref.generate(torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask), **kwargs)
    return out


def _pad_to(reference: np.ndarray, width: int, fill: int) -> np.ndarray:
    out = np.full((reference.shape[0], width), fill, reference.dtype)
    out[:, : reference.shape[1]] = reference
    return out


def _assert_same_tokens(ours, reference, fill):
    ours = np.asarray(ours)
    reference = np.asarray(reference)
    assert ours.shape[0] == reference.shape[0] and ours.shape[1] >= reference.shape[1]
    np.testing.assert_array_equal(ours, _pad_to(reference, ours.shape[1], fill))


def test_greedy_matches_transformers_batched_left_padding(models):
    ref, ours, _ = models
    ids, mask = _prompts()
    out = ours.generate(ids, attention_mask=mask, max_new_tokens=NEW)
    expected = _torch_generate(ref, ids, mask, max_new_tokens=NEW, do_sample=False)
    assert out.sequences.shape == (3, 7 + NEW)
    _assert_same_tokens(out.sequences, expected, EOS)


def test_greedy_with_processors_and_several_eos(models):
    """Repetition penalty, no-repeat-ngram, min_new_tokens, forced eos, suppress and begin-suppress,
    two EOS ids (rows stop at different steps and are padded)."""
    ref, ours, _ = models
    ids, mask = _prompts(seed=1)
    settings = dict(max_new_tokens=14, repetition_penalty=1.3, no_repeat_ngram_size=2, min_new_tokens=3,
                    eos_token_id=[45, EOS], forced_eos_token_id=EOS, suppress_tokens=[59, 79],
                    begin_suppress_tokens=[49])
    out = ours.generate(ids, attention_mask=mask, **settings)
    expected = _torch_generate(ref, ids, mask, do_sample=False, **settings)
    _assert_same_tokens(out.sequences, expected, 45)
    generated = np.asarray(out.sequences)[:, 7:]
    assert not np.isin(generated, [59, 79]).any()


def test_forced_bos_and_min_length_on_one_token_prompt(models):
    ref, ours, _ = models
    ids = np.array([[5], [17]], np.int32)
    mask = np.ones_like(ids)
    settings = dict(max_length=10, min_length=6, forced_bos_token_id=3, begin_suppress_tokens=[7])
    out = ours.generate(ids, attention_mask=mask, **settings)
    expected = _torch_generate(ref, ids, mask, do_sample=False, **settings)
    _assert_same_tokens(out.sequences, expected, EOS)
    assert (np.asarray(out.sequences)[:, 1] == 3).all()


@pytest.mark.parametrize("early_stopping,length_penalty", [(True, 0.7), (False, 1.5), ("never", 0.7)])
def test_beam_search_matches_transformers(models, early_stopping, length_penalty):
    """num_beams=3, num_return_sequences=2, two EOS ids, n-gram and repetition penalties."""
    ref, ours, _ = models
    ids, mask = _prompts(seed=2)
    settings = dict(max_new_tokens=NEW, num_beams=3, num_return_sequences=2, length_penalty=length_penalty,
                    early_stopping=early_stopping, eos_token_id=[45, EOS], no_repeat_ngram_size=3,
                    repetition_penalty=1.2)
    out = ours.generate(ids, attention_mask=mask, **settings)
    expected = _torch_generate(ref, ids, mask, do_sample=False, output_scores=True, return_dict_in_generate=True,
                               **settings)
    assert out.sequences.shape == (6, 7 + NEW) and out.scores.shape == (6,)
    _assert_same_tokens(out.sequences, expected.sequences, 45)
    np.testing.assert_allclose(np.asarray(out.scores), expected.sequences_scores.numpy(), atol=1e-4)


def test_no_recompile_within_bucket_or_for_new_sampling_values(models, compiles):
    _, ours, _ = models
    ids, mask = _prompts(seed=4)
    sample = dict(do_sample=True, eos_token_id=None)
    ours.generate(ids, attention_mask=mask, max_new_tokens=NEW)  # compiles (or reuses) greedy for bucket 16
    ours.generate(ids, attention_mask=mask, max_new_tokens=NEW, temperature=0.7, top_k=20, **sample)
    before = compiles["n"]
    ours.generate(ids[:, 2:], attention_mask=mask[:, 2:], max_new_tokens=NEW)  # 5 tokens: the bucket of 7
    for temperature, top_k, top_p, min_p in [(1.3, 33, 0.9, 0.0), (0.5, 50, 0.6, 0.1), (1.0, 7, 1.0, 0.3)]:
        ours.generate(ids, attention_mask=mask, max_new_tokens=NEW, temperature=temperature, top_k=top_k,
                      top_p=top_p, min_p=min_p, prng_key=jax.random.PRNGKey(top_k), **sample)
    assert compiles["n"] == before, f"{compiles['n'] - before} compilations inside a known bucket"
    jax.jit(lambda x: x * 3 + 1)(np.arange(5))  # the counter does see a compilation
    assert compiles["n"] == before + 1


def test_sampling_is_reproducible_with_a_fixed_key(models):
    _, ours, _ = models
    ids, mask = _prompts(seed=5)
    kwargs = dict(attention_mask=mask, max_new_tokens=NEW, do_sample=True, temperature=1.5, top_k=50, top_p=0.95,
                  eos_token_id=None)
    a = np.asarray(ours.generate(ids, prng_key=jax.random.PRNGKey(1), **kwargs).sequences)
    b = np.asarray(ours.generate(ids, prng_key=jax.random.PRNGKey(1), **kwargs).sequences)
    c = np.asarray(ours.generate(ids, prng_key=jax.random.PRNGKey(2), **kwargs).sequences)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    np.testing.assert_array_equal(a[:, :7], ids)


def test_sampling_num_return_sequences(models):
    _, ours, _ = models
    ids, mask = _prompts(seed=6)
    out = ours.generate(ids, attention_mask=mask, max_new_tokens=NEW, do_sample=True, num_return_sequences=2,
                        eos_token_id=None, temperature=2.0, top_k=0, top_p=0.9)  # the whole-vocabulary top-p path
    seqs = np.asarray(out.sequences)
    assert seqs.shape == (6, 7 + NEW)
    np.testing.assert_array_equal(seqs[::2, :7], ids)
    assert (seqs[0::2] != seqs[1::2]).any()  # two independent samples per prompt


class _Recorder:
    def __init__(self):
        self.chunks, self.ended = [], False

    def put(self, value):
        self.chunks.append(np.asarray(value))

    def end(self):
        self.ended = True


def test_streamer_yields_the_tokens_as_made_without_recompiling(models, compiles):
    _, ours, _ = models
    ids, mask = _prompts(seed=7)
    plain = np.asarray(ours.generate(ids, attention_mask=mask, max_new_tokens=NEW).sequences)
    before = compiles["n"]
    recorder = _Recorder()
    streamed = np.asarray(ours.generate(ids, attention_mask=mask, max_new_tokens=NEW, streamer=recorder).sequences)
    assert compiles["n"] == before
    np.testing.assert_array_equal(streamed, plain)
    assert recorder.ended
    np.testing.assert_array_equal(recorder.chunks[0], ids)
    tokens = np.stack(recorder.chunks[1:], axis=1)
    np.testing.assert_array_equal(tokens, plain[:, 7 : 7 + tokens.shape[1]])
    assert (plain[:, 7 + tokens.shape[1] :] == EOS).all()  # the stream stops when every row is done


def test_text_streamers(tmp_path):
    from _helpers import gpt2_tokenizer_dir

    from flaxformers.generation import TextIteratorStreamer, TextStreamer, TokenIteratorStreamer
    from flaxformers.tokenizers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir(tmp_path))
    prompt = tokenizer.encode("Hello")
    new = tokenizer.encode(" wide world, caf\u00e9 \u2603\nnext line")
    for streamer in (TextIteratorStreamer(tokenizer, skip_prompt=True), TokenIteratorStreamer()):
        streamer.put(np.array([prompt]))
        for token in new:
            streamer.put(np.array([token]))
        streamer.end()
        pieces = list(streamer)
        if isinstance(streamer, TokenIteratorStreamer):
            assert [int(p[0]) for p in pieces] == new
        else:
            assert "".join(pieces) == tokenizer.decode(new) and len(pieces) > 2
            assert all("\ufffd" not in p for p in pieces)  # no half-decoded characters
    with open(tmp_path / "out.txt", "w") as f:
        printer = TextStreamer(tokenizer, file=f)
        printer.put(np.array([prompt]))
        printer.put(np.array([new[0]]))
        printer.end()
    assert (tmp_path / "out.txt").read_text() == tokenizer.decode(prompt + new[:1]) + "\n"
    with pytest.raises(ValueError, match="one row"):
        TextStreamer(tokenizer).put(np.zeros((2, 3), np.int32))


def test_manual_loop_with_prepare_and_update_inputs(models):
    """transformers 4.57's per-step hooks drive the model's __call__ to the same tokens as generate."""
    _, ours, _ = models
    ids, mask = _prompts(seed=8)
    call = jax.jit(lambda ids, kwargs: ours(ids, **kwargs))
    kwargs = ours.prepare_inputs_for_generation(ids, 7 + NEW, attention_mask=mask)
    tokens, out = [], call(ids, kwargs)
    for _ in range(NEW):
        token = np.asarray(out.logits[:, -1].argmax(-1))[:, None]
        tokens.append(token)
        kwargs = ours.update_inputs_for_generation(out, kwargs)
        out = call(token, kwargs)
    expected = np.asarray(ours.generate(ids, attention_mask=mask, max_new_tokens=NEW).sequences)[:, 7:]
    manual = np.concatenate(tokens, axis=1)
    after_eos = np.cumsum(manual == EOS, axis=1) - (manual == EOS) > 0  # generate pads what follows an EOS
    np.testing.assert_array_equal(np.where(after_eos, EOS, manual), expected)


def test_bad_calls_get_clear_errors(models):
    _, ours, path = models
    ids, mask = _prompts()
    with pytest.raises(ValueError, match="left"):
        ours.generate(ids, attention_mask=mask[:, ::-1].copy(), max_new_tokens=3)
    with pytest.raises(ValueError, match="unknown keyword"):
        ours.generate(ids, max_new_tokens=3, temprature=0.5)
    with pytest.raises(ValueError, match="num_return_sequences"):
        ours.generate(ids, max_new_tokens=3, num_return_sequences=2)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        ours.generate(ids, max_new_tokens=60)
    with pytest.raises(ValueError, match="temperature"):
        ours.generate(ids, max_new_tokens=3, do_sample=True, temperature=0.0)
    with pytest.raises(ValueError, match="beam search"):
        ours.generate(ids, max_new_tokens=3, num_beams=2, streamer=_Recorder())
    with pytest.raises(ValueError, match="outside"):
        ours.generate(ids + 1000, max_new_tokens=3)
    with pytest.raises(TypeError, match="cannot generate"):
        FlaxGPT2Model.from_pretrained(path).generate(ids, max_new_tokens=3)


def test_generation_config_round_trip(models, tmp_path):
    _, ours, _ = models
    config = GenerationConfig(max_new_tokens=7, do_sample=True, top_p=0.8, eos_token_id=[1, 2], custom_key="kept")
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved["top_p"] == 0.8 and saved["custom_key"] == "kept" and "num_beams" not in saved
    loaded = GenerationConfig.from_pretrained(tmp_path)
    assert loaded == config
    # what transformers writes, we read, and the other way round
    theirs = transformers.GenerationConfig.from_pretrained(tmp_path)
    assert theirs.top_p == 0.8 and theirs.eos_token_id == [1, 2]
    theirs.save_pretrained(tmp_path / "t")
    assert GenerationConfig.from_pretrained(tmp_path / "t").max_new_tokens == 7


def test_model_reads_generation_config_json(models, tmp_path):
    _, ours, path = models
    config = GenerationConfig(max_new_tokens=4, eos_token_id=EOS, pad_token_id=EOS)
    ours.save_pretrained(tmp_path, params=ours.params)
    config.save_pretrained(tmp_path)
    loaded = FlaxGPT2LMHeadModel.from_pretrained(str(tmp_path))
    assert loaded.generation_config.max_new_tokens == 4
    assert os.path.exists(tmp_path / "generation_config.json")


def test_length_denominators_match_python_power():
    table = engine.length_denominators(5, 0.7)
    assert table.dtype == np.float32 and table[3] == np.float32(3**0.7)


def test_scan_layers_model_generates_the_same(models):
    """Scan-over-layers caches stack layers on axis 0: beam reordering must gather rows on axis 1."""
    ref, _, path = models
    scanned = FlaxGPT2LMHeadModel.from_pretrained(path, scan_layers=True)
    ids, mask = _prompts(seed=9)
    settings = dict(max_new_tokens=6, num_beams=2, eos_token_id=None)
    out = scanned.generate(ids, attention_mask=mask, **settings)
    expected = _torch_generate(ref, ids, mask, do_sample=False, **settings)
    _assert_same_tokens(out.sequences, expected, 0)

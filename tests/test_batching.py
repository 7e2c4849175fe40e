"""Continuous batching: requests joining and leaving a fixed set of slots give what they give alone.

The reference for greedy tokens is `model.generate` on the prompt alone (itself checked against
transformers in test_causal_lm.py); logprobs are checked against a full forward of the sequence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax
import numpy as np
import pytest

from flaxformers import (
    BloomConfig,
    FlaxBloomForCausalLM,
    FlaxGemma3ForCausalLM,
    FlaxGPT2LMHeadModel,
    Gemma3TextConfig,
    GPT2Config,
)
from flaxformers.generation.batching import ContinuousBatcher, Finished, Request, Token

MODELS = {
    "gpt2": lambda: FlaxGPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=96, n_embd=32, n_layer=2, n_head=4)),
    # GQA, sliding window 5 on alternate layers: per-row masks must slide per row
    "gemma3": lambda: FlaxGemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, sliding_window=5, sliding_window_pattern=2, max_position_embeddings=96)),
    "bloom": lambda: FlaxBloomForCausalLM(BloomConfig(vocab_size=97, hidden_size=32, n_layer=2, n_head=4)),  # ALiBi
}
PROMPTS = [[5, 17, 33], list(range(3, 40)), [64], [9, 8, 7, 6, 5, 4, 3, 2, 11, 12, 13]]  # one spans 3 chunks
NEW = 12


def _greedy_alone(model, prompt) -> list[int]:
    out = model.generate(np.asarray([prompt], np.int32), max_new_tokens=NEW, do_sample=False, eos_token_id=None,
                         pad_token_id=0)
    return [int(t) for t in np.asarray(out.sequences)[0, len(prompt):]]


def _tokens(request: Request) -> tuple[list[Token], Finished]:
    events = list(request)
    return [e for e in events if isinstance(e, Token)], events[-1]


@pytest.fixture(scope="module", params=list(MODELS))
def setup(request):
    model = MODELS[request.param]()
    # prompt pieces of 8 or 16 tokens; decode steps over the first 32 or all 64 key slots
    batcher = ContinuousBatcher(model, slots=3, max_length=64, chunk=16, min_piece=8, min_window=32)
    assert (batcher.pieces, batcher.windows) == ((8, 16), (32, 64))
    batcher.warmup()
    yield model, batcher
    batcher.close()


def test_concurrent_greedy_equals_each_request_alone(setup):
    model, batcher = setup
    requests = [batcher.submit(Request(prompt_ids=p, max_new_tokens=NEW, temperature=0.0)) for p in PROMPTS]
    for prompt, request in zip(PROMPTS, requests):  # 4 requests, 3 slots: one waits for a free row
        tokens, finished = _tokens(request)
        assert finished.reason == "length"
        assert [t.id for t in tokens] == _greedy_alone(model, prompt)
    assert batcher.active == 0


@contextlib.contextmanager
def _counting_compiles() -> Iterator[list[str]]:
    """XLA backend compiles in this process while inside (the jit caches cannot tell: warmup compiles
    ahead of time)."""
    compiles: list[str] = []

    def listen(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(kwargs.get("fun_name", "?"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield compiles
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def test_a_warm_batcher_never_recompiles(setup):
    _, batcher = setup
    assert batcher.row_buckets == (1, 2, 3)
    with _counting_compiles() as compiles:
        for prompt in ([4, 5, 6, 7], list(range(1, 30)), list(range(1, 50))):  # both windows, both pieces
            _tokens(batcher.submit(Request(prompt_ids=prompt, max_new_tokens=5, temperature=0.7, top_p=0.9, seed=3)))
        concurrent = [batcher.submit(Request(prompt_ids=p, max_new_tokens=5, temperature=0.0)) for p in PROMPTS[:3]]
        for request in concurrent:  # 1, 2 and 3 rows
            _tokens(request)
    assert compiles == []


def test_a_cold_batcher_compiles_while_serving():
    """The check above can fail: without warmup, serving compiles."""
    batcher = ContinuousBatcher(MODELS["gpt2"](), slots=2, max_length=32, chunk=16, min_piece=16, min_window=32)
    with _counting_compiles() as compiles:
        _tokens(batcher.submit(Request(prompt_ids=[4, 5], max_new_tokens=2, temperature=0.0)))
    batcher.close()
    assert compiles == ["jit(_prefill_chunk)", "jit(_decode_step)"]


def test_logprobs_are_the_model_distribution(setup):
    model, batcher = setup
    prompt = PROMPTS[0]
    tokens, _ = _tokens(batcher.submit(Request(prompt_ids=prompt, max_new_tokens=4, temperature=0.0, logprobs=3)))
    ids = np.asarray([prompt + [t.id for t in tokens]], np.int32)
    logprobs = np.asarray(jax.nn.log_softmax(model(ids).logits[0], axis=-1))
    for step, token in enumerate(tokens):
        row = logprobs[len(prompt) - 1 + step]
        np.testing.assert_allclose(token.logprob, row[token.id], atol=1e-4)
        assert [t for t, _ in token.top] == list(np.argsort(-row)[:3])
        np.testing.assert_allclose([v for _, v in token.top], np.sort(row)[::-1][:3], atol=1e-4)


def test_sampling_is_seeded_per_request(setup):
    _, batcher = setup

    def draw(seed, **kw):
        return [t.id for t in _tokens(batcher.submit(Request(prompt_ids=[3, 4], max_new_tokens=8, seed=seed, **kw)))[0]]

    assert draw(1) == draw(1) and draw(1) != draw(2)
    assert draw(5, top_k=1) == draw(6, temperature=0.0)  # top-k 1 is greedy whatever the seed
    concurrent = [batcher.submit(Request(prompt_ids=[3, 4], max_new_tokens=8, seed=1)) for _ in range(3)]
    assert all([t.id for t in _tokens(r)[0]] == draw(1) for r in concurrent)


def test_eos_and_cancel_free_the_row(setup):
    model, batcher = setup
    alone = _greedy_alone(model, PROMPTS[1])
    eos = alone[2]
    tokens, finished = _tokens(batcher.submit(Request(prompt_ids=PROMPTS[1], max_new_tokens=NEW, temperature=0.0,
                                                      eos_token_ids=(eos,))))
    assert finished.reason == "stop" and [t.id for t in tokens] == alone[:alone.index(eos) + 1]
    request = batcher.submit(Request(prompt_ids=[1, 2, 3], max_new_tokens=40, temperature=0.0))
    seen = 0
    for event in request:
        if isinstance(event, Token):
            seen += 1
            if seen == 2:
                request.cancel()
        else:
            assert event.reason == "cancelled"
    assert seen < 40 and batcher.active == 0


def test_bad_requests_are_refused(setup):
    _, batcher = setup
    with pytest.raises(ValueError, match="context of 64"):
        batcher.submit(Request(prompt_ids=list(range(60)), max_new_tokens=10))
    with pytest.raises(ValueError, match="empty"):
        batcher.submit(Request(prompt_ids=[], max_new_tokens=1))
    with pytest.raises(ValueError, match="outside"):
        batcher.submit(Request(prompt_ids=[500], max_new_tokens=1))

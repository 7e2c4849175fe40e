"""Timing `generate`: first call (compile included), tokens/s, prefill and per-step decode time.

Used by `flaxformers bench generate` and `benchmarks/bench_generate.py`. Times are the best of
`repeats` runs, so a busy machine's noise only ever slows a run down.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import jax
import numpy as np

from flaxformers.generation import engine
from flaxformers.generation.config import GenerationConfig
from flaxformers.generation.mixin import GenerationRequest

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Counts XLA compilations while active (`with CompileCounter() as c: ...; c.count`)."""

    def __init__(self):
        self.counter: Counter = Counter()

    def _listen(self, name: str, duration: float, **kwargs: Any) -> None:
        if name == COMPILE_EVENT:
            self.counter["count"] += 1
            self.counter["seconds"] += duration

    def __enter__(self) -> CompileCounter:
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc: Any) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)

    @property
    def count(self) -> int:
        return self.counter["count"]

    @property
    def seconds(self) -> float:
        return self.counter["seconds"]


def random_prompt(batch: int, length: int, vocab_size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab_size, (batch, length)).astype(np.int32)


def time_generate(model: Any, params: Any = None, batch: int = 1, prompt_len: int = 32, new_tokens: int = 128,
                  repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Greedy decoding of exactly `new_tokens` tokens (no EOS) from random prompts.

    Returns first_call_s (compile included), compile_s, compiles_after_first (calls with other prompts
    of the same bucket: should be 0), generate_s and tokens_per_s (whole calls), prefill_s and step_s
    (the compiled prefill, and one decode step of the while loop).
    """
    params = model.params if params is None else params
    vocab = model.config.vocab_size
    kwargs = dict(max_new_tokens=new_tokens, eos_token_id=None, pad_token_id=0, do_sample=False)
    prompt = random_prompt(batch, prompt_len, vocab, seed)

    def call(ids: np.ndarray) -> None:
        jax.block_until_ready(model.generate(ids, params=params, **kwargs).sequences)

    with CompileCounter() as first:
        start = time.perf_counter()
        call(prompt)
        first_call = time.perf_counter() - start
    with CompileCounter() as later:
        times = []
        for r in range(repeats):
            ids = random_prompt(batch, prompt_len - (r % 2), vocab, seed + r + 1)  # a new prompt, same bucket
            start = time.perf_counter()
            call(ids)
            times.append(time.perf_counter() - start)

    # the two compiled halves, timed apart: prefill, then the while loop over new_tokens - 1 steps
    config = GenerationConfig(**kwargs)
    request = GenerationRequest.build(model, prompt, None, config, False, {})
    gen = engine.compiled_generator(model, request.plan)
    args = (request.processors, request.sampling, request.consts)
    prefill_times, step_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        state, _, _ = jax.block_until_ready(gen.prefill(params, request.ids, request.mask, *args, jax.random.PRNGKey(0)))
        middle = time.perf_counter()
        jax.block_until_ready(gen.decode(params, state, *args, np.int32(request.plan.length)))
        end = time.perf_counter()
        prefill_times.append(middle - start)
        step_times.append((end - middle) / max(new_tokens - 1, 1))
    best = min(times)
    return {
        "batch": batch, "prompt_len": prompt_len, "new_tokens": new_tokens,
        "first_call_s": first_call, "compile_s": first.seconds, "compiles_after_first": later.count,
        "generate_s": best, "tokens_per_s": batch * new_tokens / best,
        "prefill_s": min(prefill_times), "step_s": min(step_times),
    }

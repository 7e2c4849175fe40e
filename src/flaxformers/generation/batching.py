"""Continuous batching: requests join and leave a fixed set of slots between decode steps.

The batcher owns `slots` rows of the engine cache (nn.attention's per-row layout). A new request's
prompt is prefilled into a free row in chunks of `chunk` tokens, one chunk between two decode steps,
so a long prompt never stalls the others for long; every decode step advances every active row by
one token. A finished or cancelled request frees its row at once. Rows never mix, so a request's
greedy tokens are the same alone or among others.

What a step costs follows what it needs, from a handful of compiled shapes: a prompt piece is padded
to a power of two (`min_piece` up to `chunk`) and attends only to the key blocks written so far; a
decode step reads only the first `window` key slots of every row, the smallest power of two
(from `min_window`, at most the context) above its longest row, and computes only the first 1, 2, 4,
... rows that cover the busy ones (a request takes the lowest free row). `warmup()` (the server calls it)
compiles every one of these shapes, after which nothing recompiles.

Sampling is per row: temperature 0 is greedy; top-k and top-p act on the `candidates` best tokens
(exact unless the kept mass lies beyond them); a row's random stream depends on its seed and position
only. Each token comes with its log-probability and the top `logprobs` alternatives.

    batcher = ContinuousBatcher(model, slots=8)
    request = batcher.submit(Request(prompt_ids=[1, 2, 3], max_new_tokens=16, temperature=0.0))
    for event in request:  # Token(...) events, then Finished(reason)
        ...
    batcher.close()
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.generation.engine import map_cache_rows, new_cache
from flaxformers.generation.logits_process import NEG_INF, top_k_keep, top_p_remove_sorted
from flaxformers.nn.attention import attend_to
from flaxformers.nn.stack import SCAN_KEY


class Token(NamedTuple):
    id: int
    logprob: float  # of the chosen token under the model's distribution
    top: tuple[tuple[int, float], ...]  # the `logprobs` most likely tokens and their log-probabilities


class Finished(NamedTuple):
    reason: str  # "stop" (an eos token), "length", "cancelled" or "error"
    detail: str = ""


@dataclass
class Request:
    """One generation request and the stream of its events."""

    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k
    seed: int = 0
    logprobs: int = 0  # alternatives reported per token (at most the batcher's max_logprobs)
    eos_token_ids: tuple[int, ...] = ()
    events: queue.Queue = field(default_factory=queue.Queue, repr=False)
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        """Stop generating; the row is freed before the next decode step."""
        self.cancelled.set()

    def __iter__(self) -> Iterator[Token | Finished]:
        while True:
            event = self.events.get()
            yield event
            if isinstance(event, Finished):
                return


@dataclass
class _Slot:
    request: Request
    position: int = 0  # next cache position (= tokens written)
    prefilled: int = 0  # prompt tokens written so far
    generated: int = 0
    last_token: int = 0


class _Sampling(NamedTuple):
    temperature: jax.Array  # [B]
    top_k: jax.Array  # [B]
    top_p: jax.Array  # [B]
    seed: jax.Array  # [B]
    position: jax.Array  # [B]


def sample_rows(logits: jax.Array, sampling: _Sampling, candidates: int, max_logprobs: int):
    """Per-row next tokens from logits [B, V]: (tokens [B], their logprobs [B], top ids/logprobs [B, L]).

    The draws are skipped (`lax.cond`) when no row needs them: a step of greedy rows spends nothing on
    random numbers, and the whole-vocabulary draw runs only when a row samples without top-k/top-p.
    """
    logprobs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    greedy = sampling.temperature <= 0.0
    scaled = logits / jnp.where(greedy, 1.0, sampling.temperature)[:, None]
    keys = jax.vmap(lambda seed, pos: jax.random.fold_in(jax.random.PRNGKey(seed), pos))(
        sampling.seed, sampling.position)
    pick = jax.vmap(jax.random.categorical)
    unfiltered = (sampling.top_k == 0) & (sampling.top_p >= 1.0)

    def from_candidates():
        values, indices = jax.lax.top_k(scaled, candidates)  # [B, C], descending
        top_k = jnp.where(sampling.top_k > 0, sampling.top_k, candidates)
        values = jnp.where(top_k_keep(values, top_k), values, NEG_INF)
        values = jnp.where(top_p_remove_sorted(values, sampling.top_p[:, None]), NEG_INF, values)
        return jnp.take_along_axis(indices, pick(keys, values)[:, None], axis=-1)[:, 0].astype(jnp.int32)

    def maybe(needed, draw):
        return jax.lax.cond(jnp.any(needed), draw, lambda: jnp.zeros(logits.shape[:1], jnp.int32))

    sampled = jnp.where(unfiltered, maybe(~greedy & unfiltered, lambda: pick(keys, scaled).astype(jnp.int32)),
                        maybe(~greedy & ~unfiltered, from_candidates))
    tokens = jnp.where(greedy, jnp.argmax(logits, axis=-1), sampled).astype(jnp.int32)
    chosen = jnp.take_along_axis(logprobs, tokens[:, None], axis=-1)[:, 0]
    top_values, top_ids = jax.lax.top_k(logprobs, max_logprobs)
    return tokens, chosen, top_ids, top_values


class ContinuousBatcher:
    """A decode loop over `slots` rows that requests join and leave; see the module docstring."""

    def __init__(self, model: Any, params: Any = None, *, slots: int = 8, max_length: int | None = None,
                 chunk: int = 256, candidates: int = 256, max_logprobs: int = 5, min_piece: int = 16,
                 min_window: int = 128):
        positions = getattr(model.config, "max_position_embeddings", None)
        self.max_length = int(max_length or min(positions or 4096, 4096))
        if positions is not None and self.max_length > positions:
            raise ValueError(f"max_length={self.max_length} exceeds the model's max_position_embeddings={positions}.")
        self.model, self.params = model, params if params is not None else model.params
        self.slots, self.chunk = slots, min(chunk, self.max_length)
        self.candidates = min(candidates, model.config.vocab_size)
        self.max_logprobs = max_logprobs
        # Whole chunks fit, plus one scratch position that rows not yet decoding write to.
        self.cache_length = -(-self.max_length // self.chunk) * self.chunk + 1
        self.cache = new_cache(model, slots, self.cache_length)
        self.pieces = _powers_of_two(min(min_piece, self.chunk), self.chunk)  # padded prompt piece lengths
        # Key slots a decode step reads: rows decode below max_length <= cache_length - 1 (the scratch slot).
        self.windows = _powers_of_two(min(min_window, self.cache_length - 1), self.cache_length - 1)
        # Rows a decode step computes: the first 1, 2, 4, ... slots (requests take the lowest free slot),
        # so a lone request does not pay for every slot's matmuls.
        self.row_buckets = _powers_of_two(1, slots)
        self._prefill = jax.jit(self._prefill_chunk, donate_argnums=(1,))
        self._decode = jax.jit(self._decode_step, donate_argnums=(1,), static_argnums=(5, 6))
        self._waiting: queue.Queue[Request] = queue.Queue()
        self._rows: list[_Slot | None] = [None] * slots
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flaxformers-batcher", daemon=True)
        self._thread.start()

    # --- public -------------------------------------------------------------------------------
    def submit(self, request: Request) -> Request:
        """Queue a request; its events arrive on `request` (iterate it)."""
        if self._stop.is_set():
            raise RuntimeError("This batcher is closed.")
        self._check(request)
        self._waiting.put(request)
        self._wake.set()
        return request

    def warmup(self, threads: int | None = None) -> None:
        """Compile every shape the loop can use (each prompt piece length; each decode window and row
        count) now, on the idle batcher, so that no request waits for a compile. XLA compiles them side
        by side on `threads` threads (default: one per CPU). Call it before the first request."""
        if self.active or not self._waiting.empty():
            raise RuntimeError("warmup() runs on an idle batcher; call it before submitting requests.")
        pieces = [(self._prefill, (self.params, self.cache, np.int32(0), np.zeros((1, piece), np.int32), np.int32(0),
                                   np.int32(0), self._sampling([None]))) for piece in self.pieces]
        tokens, scratch = np.zeros((self.slots,), np.int32), np.full((self.slots,), self.cache_length - 1, np.int32)
        steps = [(self._decode, (self.params, self.cache, tokens, scratch, self._sampling([None] * self.slots), window,
                                 rows)) for window, rows in itertools.product(self.windows, self.row_buckets)]
        with ThreadPoolExecutor(threads or os.cpu_count()) as pool:
            list(pool.map(lambda job: job[0].lower(*job[1]).compile(), pieces + steps))

    def close(self) -> None:
        """Stop the loop: requests still running end with Finished("cancelled")."""
        self._stop.set()
        self._wake.set()
        self._thread.join()

    @property
    def active(self) -> int:
        return sum(row is not None for row in self._rows)

    def _check(self, request: Request) -> None:
        n = len(request.prompt_ids)
        if n == 0:
            raise ValueError("The prompt is empty; pass at least one token.")
        if request.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={request.max_new_tokens} must be >= 1.")
        if n + request.max_new_tokens > self.max_length:
            raise ValueError(f"The prompt has {n} tokens and max_new_tokens={request.max_new_tokens}: that needs "
                             f"{n + request.max_new_tokens} positions, more than this server's context of "
                             f"{self.max_length}. Shorten the prompt or lower max_tokens.")
        vocab = self.model.config.vocab_size
        if min(request.prompt_ids) < 0 or max(request.prompt_ids) >= vocab:
            raise ValueError(f"The prompt holds token ids outside [0, {vocab}).")
        if not 0 <= request.logprobs <= self.max_logprobs:
            raise ValueError(f"logprobs={request.logprobs} must be between 0 and {self.max_logprobs}.")

    # --- compiled -----------------------------------------------------------------------------
    def _forward(self, params, cache, ids, positions):
        # Padding and the scratch row write past the real tokens; their positions stay in the model's
        # range, or learned embeddings would read past their table and put NaNs in the cache.
        positions = jnp.minimum(positions, self.max_length - 1)
        outputs, mutated = self.model.module.apply(
            {"params": params, "cache": cache}, input_ids=ids,
            attention_mask=jnp.ones((ids.shape[0], self.cache_length), jnp.int32), position_ids=positions,
            deterministic=True, init_cache=False, output_attentions=False, output_hidden_states=False,
            return_dict=True, mutable=["cache"],
        )
        return outputs.logits.astype(jnp.float32), mutated["cache"]

    def _prefill_chunk(self, params, cache, slot, ids, start, last, sampling):
        """Write `ids` [1, chunk] into row `slot` at `start`; sample from the logits of chunk position `last`."""
        row = map_cache_rows(lambda x, axis: jax.lax.dynamic_slice_in_dim(x, slot, 1, axis), cache)
        row = _set_index(row, start)
        logits, row = self._forward(params, row, ids, start + jnp.arange(ids.shape[1])[None])
        cache = _put_row(cache, row, slot)
        picked = sample_rows(logits[:, last], sampling, self.candidates, self.max_logprobs)
        return cache, picked

    def _decode_step(self, params, cache, tokens, positions, sampling, window: int, rows: int):
        """One token for each of the first `rows` rows ([slots] inputs); attention reads key slots
        [0, window) (rows below it are exact)."""
        cache = _set_index(cache, positions)
        with attend_to(window):
            logits, cache = self._forward(params, cache, tokens[:rows, None], positions[:rows, None])
        sampling = jax.tree_util.tree_map(lambda x: x[:rows], sampling)
        return cache, sample_rows(logits[:, -1], sampling, self.candidates, self.max_logprobs)

    # --- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._admit()
            prefilling = next((i for i, r in enumerate(self._rows) if r and r.prefilled < len(r.request.prompt_ids)),
                              None)
            if prefilling is not None:
                self._guard(self._prefill_next, prefilling)
            if any(r is not None and r.prefilled == len(r.request.prompt_ids) for r in self._rows):
                self._guard(self._decode_all)
            if all(r is None for r in self._rows) and self._waiting.empty():
                self._wake.wait()
                self._wake.clear()
        for i, row in enumerate(self._rows):
            if row is not None:
                self._finish(i, Finished("cancelled", "the server is shutting down"))
        while not self._waiting.empty():
            self._waiting.get().events.put(Finished("cancelled", "the server is shutting down"))

    def _guard(self, fn, *args) -> None:
        """Run a step; an exception ends the running requests with an error instead of ending the loop
        (the donated cache may be gone, so every row starts afresh)."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001  (reported to the requests, which raise or answer 500)
            self.cache = new_cache(self.model, self.slots, self.cache_length)
            for i, row in enumerate(self._rows):
                if row is not None:
                    self._finish(i, Finished("error", f"{type(e).__name__}: {e}"))

    def _admit(self) -> None:
        for i in range(self.slots):
            if self._rows[i] is None and not self._waiting.empty():
                request = self._waiting.get()
                if request.cancelled.is_set():
                    request.events.put(Finished("cancelled"))
                    continue
                self._rows[i] = _Slot(request)
        for i, row in enumerate(self._rows):  # cancelled rows leave before the next step
            if row is not None and row.request.cancelled.is_set():
                self._finish(i, Finished("cancelled"))

    def _sampling(self, rows: list[_Slot | None]) -> _Sampling:
        def column(get, dtype):
            return np.asarray([get(r) if r is not None else 0 for r in rows], dtype)

        return _Sampling(
            temperature=column(lambda r: r.request.temperature, np.float32),
            top_k=column(lambda r: r.request.top_k, np.int32),
            top_p=column(lambda r: r.request.top_p, np.float32),
            seed=column(lambda r: r.request.seed % 2**31, np.int32),
            position=column(lambda r: r.position, np.int32),
        )

    def _prefill_next(self, i: int) -> None:
        row = self._rows[i]
        prompt = row.request.prompt_ids
        piece = prompt[row.prefilled:row.prefilled + self.chunk]
        ids = np.zeros((1, _bucket(len(piece), self.pieces)), np.int32)  # padding writes past the prompt
        ids[0, :len(piece)] = piece
        row.position = row.prefilled + len(piece)
        done = row.position == len(prompt)
        self.cache, picked = self._prefill(self.params, self.cache, np.int32(i), ids, np.int32(row.prefilled),
                                           np.int32(len(piece) - 1), self._sampling([row]))
        row.prefilled = row.position
        if done:
            self._emit(i, *(np.asarray(x)[0] for x in picked))

    def _decode_all(self) -> None:
        ready = [r if r is not None and r.prefilled == len(r.request.prompt_ids) else None for r in self._rows]
        tokens = np.asarray([r.last_token if r else 0 for r in ready], np.int32)
        scratch = self.cache_length - 1  # rows not decoding write here, never over a prompt being prefilled
        positions = np.asarray([r.position if r else scratch for r in ready], np.int32)
        window = _bucket(1 + max(r.position for r in ready if r), self.windows)
        rows = _bucket(1 + max(i for i, r in enumerate(ready) if r), self.row_buckets)
        self.cache, picked = self._decode(self.params, self.cache, tokens, positions, self._sampling(ready), window,
                                          rows)
        picked = [np.asarray(x) for x in picked]
        for i, row in enumerate(ready):
            if row is not None:
                row.position += 1
                self._emit(i, *(x[i] for x in picked))

    def _emit(self, i: int, token, logprob, top_ids, top_values) -> None:
        row = self._rows[i]
        request = row.request
        token = int(token)
        top = tuple((int(t), float(v)) for t, v in zip(top_ids[:request.logprobs], top_values[:request.logprobs]))
        request.events.put(Token(token, float(logprob), top))
        row.generated += 1
        row.last_token = token
        if token in request.eos_token_ids:
            self._finish(i, Finished("stop"))
        elif row.generated >= request.max_new_tokens or row.position >= self.max_length:
            self._finish(i, Finished("length"))

    def _finish(self, i: int, event: Finished) -> None:
        self._rows[i].request.events.put(event)
        self._rows[i] = None


def _powers_of_two(low: int, high: int) -> tuple[int, ...]:
    """low, 2 low, 4 low, ... below high, then high."""
    sizes = [low]
    while sizes[-1] * 2 < high:
        sizes.append(sizes[-1] * 2)
    return tuple(sorted({*sizes, high}))


def _bucket(n: int, sizes: tuple[int, ...]) -> int:
    return next(size for size in sizes if size >= n)


def _set_index(cache: Any, index: jax.Array) -> Any:
    """Every layer's per-row write position set to `index` (scalar or [B])."""
    def visit(path, x):
        if getattr(path[-1], "key", None) == "slot_index":
            return jnp.broadcast_to(jnp.asarray(index, x.dtype), x.shape)
        return x

    return jax.tree_util.tree_map_with_path(visit, cache)


def _put_row(cache: Any, row: Any, slot: jax.Array) -> Any:
    """Write a one-row cache back into row `slot` (the batch axis is 1 under scan-over-layers)."""
    def visit(path, full, one):
        axis = 1 if SCAN_KEY in [getattr(k, "key", None) for k in path] else 0
        return jax.lax.dynamic_update_slice_in_dim(full, one, slot, axis)

    return jax.tree_util.tree_map_with_path(visit, cache, row)


__all__ = ["ContinuousBatcher", "Finished", "Request", "Token", "sample_rows"]

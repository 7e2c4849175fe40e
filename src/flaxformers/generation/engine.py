"""The compiled generation loop shared by every causal LM and encoder-decoder.

Two jitted functions per plan (a plan is the static part of a call: mode, batch, prompt bucket,
new-token budget, beams, top-k bucket, encoder bucket):
  * `prefill` runs the left-padded prompt through the model into a fresh static KV cache (the
    engine's own layout, nn.attention.engine_cache) and picks the first new token. For an
    encoder-decoder the prompt is the decoder's (its start token) and prefill first runs the encoder
    once, on the source right-padded to its bucket, and projects the cross-attention keys and values
    of every decoder layer into the cache, where every step reads them;
  * `decode` runs a `lax.while_loop` of one-token steps until every row is done or `limit` is
    reached. Its state (cache included) is donated, so the cache is updated in place.

Streaming calls `decode` with `limit = cur_len + 1`: the same compiled step, one token per call.
Numeric settings (temperature, top-p, penalties, token ids, lengths) travel as arrays, so a new
value never recompiles. Prompt columns before `offset` are bucket padding: masked out of attention
and skipped by the processors (their `start`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from flaxformers.generation.logits_process import (
    NEG_INF,
    FlaxTopPLogitsWarper,
    min_p_remove,
    top_k_keep,
    top_p_remove_sorted,
)
from flaxformers.nn.attention import CROSS_CACHE_NAMES, engine_cache
from flaxformers.nn.stack import SCAN_KEY

Array = Any
BIG_NEG = -1.0e9  # transformers' "impossible" beam score
PREFILL_CHUNK = 512  # prompt tokens per prefill step (bounds attention scores at [B, N, 512, S])


def prefill_chunk(bucket: int) -> int:
    """Tokens per prefill step: the whole prompt bucket when short, else PREFILL_CHUNK if it divides it."""
    return PREFILL_CHUNK if bucket > PREFILL_CHUNK and bucket % PREFILL_CHUNK == 0 else bucket


@dataclass(frozen=True)
class Plan:
    """What a compiled loop depends on; everything else is a traced argument."""

    mode: str  # "greedy" | "sample" | "beam"
    batch: int  # prompt rows
    bucket: int  # padded prompt length
    max_new_tokens: int
    num_beams: int = 1
    top_k_bucket: int = 0  # sample: candidates kept by lax.top_k (0: whole vocabulary)
    full_top_p: bool = False  # sample without top-k: sort the vocabulary for top-p
    encoder_bucket: int = 0  # encoder-decoders: padded source length (0: a decoder-only model)

    @property
    def length(self) -> int:
        return self.bucket + self.max_new_tokens


class Encoded(struct.PyTreeNode):
    """The encoder's output for an encoder-decoder, fixed for the whole call."""

    states: Array  # [B, S, D]
    mask: Array  # [B, S]: 1 for source tokens, 0 for padding


class Sampling(struct.PyTreeNode):
    temperature: Array
    top_k: Array
    top_p: Array
    min_p: Array


class Consts(struct.PyTreeNode):
    pad_token_id: Array  # scalar
    eos_token_id: Array  # [E], E may be 0
    length_denominators: Array  # [max_new + 1]: n ** length_penalty (beam search)
    length_penalty: Array
    early_stopping: Array  # early_stopping is True
    never_stop_early: Array  # early_stopping == "never"


class State(struct.PyTreeNode):
    cur_len: Array  # scalar: buffer column of the next token
    sequences: Array  # [B, L]
    finished: Array  # [B]
    positions: Array  # [B]: position id of the next token
    mask: Array  # [B, L]: attention mask over the cache
    cache: Any
    rng: Array
    encoder: Encoded | None = None


class BeamState(struct.PyTreeNode):
    cur_len: Array
    running_sequences: Array  # [B, nb, L]
    running_scores: Array  # [B, nb]
    sequences: Array  # [B, nb, L]: finished hypotheses
    scores: Array  # [B, nb]
    is_finished: Array  # [B, nb]
    unsatisfied: Array  # [B, 1]: the early-stop heuristic still sees room to improve
    done: Array  # scalar
    positions: Array  # [B * nb]
    mask: Array  # [B * nb, L]
    cache: Any
    encoder: Encoded | None = None


def map_cache_rows(fn, cache: Any, skip: tuple[str, ...] = ()) -> Any:
    """`fn(x, batch_axis)` on every array of an engine cache but those named in `skip`;
    scan-over-layers caches stack layers on axis 0."""

    def visit(path, x):
        names = [getattr(k, "key", None) for k in path]
        return x if names[-1] in skip else fn(x, 1 if SCAN_KEY in names else 0)

    return jax.tree_util.tree_map_with_path(visit, cache)


def new_cache(model: Any, batch: int, length: int) -> dict:
    """A zeroed engine cache (nn.attention's per-row slot layout) for `batch` rows of `length` positions."""
    return engine_cache(jax.eval_shape(lambda: model.init_cache(batch, length)))


def _is_eos(tokens: Array, eos: Array) -> Array:
    return jnp.any(tokens[..., None] == eos, axis=-1)


def apply_processors(processors: tuple, input_ids: Array, scores: Array, cur_len: Array) -> Array:
    for processor in processors:
        scores = processor(input_ids, scores, cur_len)
    return scores


def filter_candidates(scores: Array, sampling: Sampling, plan: Plan) -> tuple[Array, Array | None]:
    """Temperature, top-k, top-p and min-p, in transformers' order: (filtered scores, their token ids).

    With top-k the other filters only see its candidates [B, K]: every other token is already -inf
    there, so this equals filtering the whole vocabulary, at the cost of one `lax.top_k`. Without
    top-k the scores keep the vocabulary axis and the ids are None.
    """
    scores = scores / sampling.temperature
    if plan.top_k_bucket:
        values, indices = jax.lax.top_k(scores, plan.top_k_bucket)  # [B, K], descending
        values = jnp.where(top_k_keep(values, sampling.top_k), values, NEG_INF)
        values = jnp.where(top_p_remove_sorted(values, sampling.top_p), NEG_INF, values)
        return jnp.where(min_p_remove(values, sampling.min_p), NEG_INF, values), indices
    if plan.full_top_p:
        scores = FlaxTopPLogitsWarper(sampling.top_p)(None, scores, None)
    return jnp.where(min_p_remove(scores, sampling.min_p), NEG_INF, scores), None


def sample_token(rng: Array, scores: Array, sampling: Sampling, plan: Plan) -> Array:
    """One draw per row from the filtered distribution."""
    values, indices = filter_candidates(scores, sampling, plan)
    choice = jax.random.categorical(rng, values, axis=-1)
    if indices is None:
        return choice
    return jnp.take_along_axis(indices, choice[:, None], axis=-1)[:, 0]


class CompiledGenerator:
    """The prefill and decode functions of one model module and one plan."""

    def __init__(self, model: Any, plan: Plan):
        self.model = model
        self.module = model.module
        self.plan = plan
        self.traces = 0  # how many times the functions were traced (= compiled)
        beam = plan.mode == "beam"
        self.prefill = jax.jit(self._beam_prefill if beam else self._prefill)
        self.decode = jax.jit(self._beam_decode if beam else self._decode, donate_argnums=(1,))

    # --- the model -------------------------------------------------------------------------------
    def _forward(self, params, cache, input_ids, mask, positions, encoder: Encoded | None):
        """One pass of the (decoder) tokens through the cache: last-position logits [B, V] and the cache."""
        if encoder is None:
            inputs = dict(input_ids=input_ids, attention_mask=mask, position_ids=positions)
        else:  # the module's `decode` (flaxformers.modeling_seq2seq)
            inputs = dict(decoder_input_ids=input_ids, decoder_attention_mask=mask, decoder_position_ids=positions,
                          encoder_hidden_states=encoder.states, encoder_attention_mask=encoder.mask, method="decode")
        outputs, mutated = self.module.apply(
            {"params": params, "cache": cache}, **inputs, deterministic=True, init_cache=False,
            output_attentions=False, output_hidden_states=False, return_dict=True, mutable=["cache"],
        )
        return outputs.logits[:, -1, :].astype(jnp.float32), mutated["cache"]  # [B, V]

    def _encode(self, params, encoder_inputs: dict[str, Array] | None) -> Encoded | None:
        """An encoder-decoder's encoder, once per call (None for a decoder-only model)."""
        if encoder_inputs is None:
            return None
        outputs = self.module.apply({"params": params}, **encoder_inputs, deterministic=True, output_attentions=False,
                                    output_hidden_states=False, return_dict=True, method="encode")
        states = outputs.last_hidden_state
        mask = encoder_inputs.get("attention_mask", jnp.ones(states.shape[:2], jnp.int32))
        return Encoded(states=states, mask=mask)

    def _new_cache(self, params, batch: int, encoder: Encoded | None):
        """A zeroed engine cache for the plan's length; for an encoder-decoder also the cross-attention
        keys and values of the encoder states (the decoder stores them when it runs with init_cache)."""
        if encoder is None:
            return new_cache(self.model, batch, self.plan.length)
        ids = jnp.zeros((batch, self.plan.length), jnp.int32)
        _, variables = self.module.apply(
            {"params": params}, decoder_input_ids=ids, decoder_attention_mask=jnp.ones_like(ids),
            decoder_position_ids=ids, encoder_hidden_states=encoder.states, encoder_attention_mask=encoder.mask,
            init_cache=True, method="decode", mutable=["cache"],
        )
        # only the cache is used: the rest of this pass is dead code to XLA
        return engine_cache(variables["cache"])

    def _run_prompt(self, params, prompt, prompt_mask, encoder: Encoded | None):
        """Prefill: returns last-position logits, the cache, the cache mask and next positions.

        A long prompt goes through in chunks of PREFILL_CHUNK tokens (a `lax.scan`, one compiled
        step), so attention scores are [B, N, chunk, S] per layer, never [B, N, T, S].
        """
        b = prompt.shape[0]
        cache = self._new_cache(params, b, encoder)  # zeros, built inside the compiled function
        mask = jnp.concatenate([prompt_mask, jnp.ones((b, self.plan.max_new_tokens), prompt_mask.dtype)], axis=1)
        positions = jnp.maximum(jnp.cumsum(prompt_mask, axis=1) - 1, 0)  # left padding does not count
        chunk = prefill_chunk(self.plan.bucket)
        chunks = self.plan.bucket // chunk

        def step(cache, xs):
            ids, pos = xs  # [B, chunk] each
            logits, cache = self._forward(params, cache, ids, mask, pos, encoder)
            return cache, logits

        split = lambda x: x.reshape(b, chunks, chunk).swapaxes(0, 1)  # noqa: E731  [chunks, B, chunk]
        cache, logits = jax.lax.scan(step, cache, (split(prompt), split(positions)))
        return logits[-1], cache, mask, jnp.sum(prompt_mask, axis=1).astype(jnp.int32)

    # --- greedy and sampling -------------------------------------------------------------------
    def _select(self, state: State, logits, processors, sampling, consts):
        scores = apply_processors(processors, state.sequences, logits, state.cur_len)
        rng = state.rng
        if self.plan.mode == "sample":
            rng, key = jax.random.split(rng)
            tokens = sample_token(key, scores, sampling, self.plan)
        else:
            tokens = jnp.argmax(scores, axis=-1)
        tokens = jnp.where(state.finished, consts.pad_token_id, tokens).astype(jnp.int32)
        sequences = jax.lax.dynamic_update_slice(state.sequences, tokens[:, None], (0, state.cur_len))
        return state.replace(
            cur_len=state.cur_len + 1, sequences=sequences, finished=state.finished | _is_eos(tokens, consts.eos_token_id),
            rng=rng,
        ), tokens

    def _prefill(self, params, prompt, prompt_mask, processors, sampling, consts, rng, encoder_inputs=None):
        self.traces += 1
        encoder = self._encode(params, encoder_inputs)
        logits, cache, mask, positions = self._run_prompt(params, prompt, prompt_mask, encoder)
        b = prompt.shape[0]
        sequences = jnp.concatenate(
            [prompt, jnp.full((b, self.plan.max_new_tokens), consts.pad_token_id, jnp.int32)], axis=1
        )
        state = State(
            cur_len=jnp.array(self.plan.bucket, jnp.int32), sequences=sequences, finished=jnp.zeros((b,), bool),
            positions=positions, mask=mask, cache=cache, rng=rng, encoder=encoder,
        )
        state, tokens = self._select(state, logits, processors, sampling, consts)
        return state, tokens, self._stopped(state)

    def _stopped(self, state: State):
        return jnp.all(state.finished) | (state.cur_len >= self.plan.length)

    def _decode(self, params, state: State, processors, sampling, consts, limit):
        self.traces += 1
        b = state.sequences.shape[0]

        def cond(s: State):
            return (s.cur_len < limit) & ~jnp.all(s.finished)

        def body(s: State):
            last = jax.lax.dynamic_slice(s.sequences, (0, s.cur_len - 1), (b, 1))  # [B, 1]
            logits, cache = self._forward(params, s.cache, last, s.mask, s.positions[:, None], s.encoder)
            s = s.replace(cache=cache, positions=s.positions + 1)
            return self._select(s, logits, processors, sampling, consts)[0]

        state = jax.lax.while_loop(cond, body, state)
        tokens = jax.lax.dynamic_slice(state.sequences, (0, state.cur_len - 1), (b, 1))[:, 0]
        return state, tokens, self._stopped(state)

    # --- beam search (transformers 5's algorithm, in static shapes) ----------------------------
    def _beam_select(self, state: BeamState, logits, processors, consts) -> BeamState:
        plan, nb = self.plan, self.plan.num_beams
        b, _, length = state.running_sequences.shape
        vocab = logits.shape[-1]
        n_eos = consts.eos_token_id.shape[0]
        keep = max(2, 1 + n_eos) * nb  # enough candidates that nb stay alive if the best ones end
        flat_running = state.running_sequences.reshape(b * nb, length)
        log_probs = apply_processors(processors, flat_running, jax.nn.log_softmax(logits, axis=-1), state.cur_len)
        log_probs = (log_probs.reshape(b, nb, vocab) + state.running_scores[:, :, None]).reshape(b, nb * vocab)
        topk_scores, topk_indices = jax.lax.top_k(log_probs, keep)  # [B, keep]
        source_beam, tokens = topk_indices // vocab, (topk_indices % vocab).astype(jnp.int32)
        topk_sequences = jnp.take_along_axis(state.running_sequences, source_beam[:, :, None], axis=1)
        topk_sequences = jax.lax.dynamic_update_slice(topk_sequences, tokens[:, :, None], (0, 0, state.cur_len))
        hits = _is_eos(tokens, consts.eos_token_id) | (state.cur_len + 1 >= length)  # stopping criteria

        # beams that go on: the best `nb` candidates that did not stop
        running_candidates = topk_scores + hits.astype(jnp.float32) * BIG_NEG
        nxt = jax.lax.top_k(running_candidates, nb)[1]
        running_sequences = jnp.take_along_axis(topk_sequences, nxt[:, :, None], axis=1)
        running_scores = jnp.take_along_axis(running_candidates, nxt, axis=1)
        running_source = jnp.take_along_axis(source_beam, nxt, axis=1)

        # finished hypotheses: only the top `nb` candidates may enter, with the length penalty applied
        generated = state.cur_len + 1 - plan.bucket
        just_finished = hits & (jnp.arange(keep) < nb)[None, :]
        finished_scores = topk_scores / consts.length_denominators[generated]
        beams_full = jnp.all(state.is_finished, axis=-1, keepdims=True) & consts.early_stopping
        finished_scores += beams_full.astype(jnp.float32) * BIG_NEG
        finished_scores += (~state.unsatisfied).astype(jnp.float32) * BIG_NEG
        finished_scores += (~just_finished).astype(jnp.float32) * BIG_NEG
        merged_scores = jnp.concatenate([state.scores, finished_scores], axis=1)
        best = jax.lax.top_k(merged_scores, nb)[1]
        sequences = jnp.take_along_axis(jnp.concatenate([state.sequences, topk_sequences], 1), best[:, :, None], 1)
        scores = jnp.take_along_axis(merged_scores, best, axis=1)
        is_finished = jnp.take_along_axis(jnp.concatenate([state.is_finished, just_finished], 1), best, axis=1)

        # the cache follows the surviving beams (a prompt's beams share its cross-attention keys)
        rows = (jnp.arange(b)[:, None] * nb + running_source).reshape(-1)
        cache = map_cache_rows(lambda x, axis: jnp.take(x, rows, axis=axis), state.cache, skip=CROSS_CACHE_NAMES)

        cur_len = state.cur_len + 1
        # "never": with a positive length penalty the best score may still come at max length
        longest = consts.never_stop_early & (consts.length_penalty > 0.0)
        best_length = jnp.where(longest, plan.max_new_tokens, cur_len - plan.bucket)
        best_possible = running_scores[:, :1] / consts.length_denominators[best_length]
        worst_finished = jnp.where(is_finished, jnp.min(scores, axis=1, keepdims=True), BIG_NEG)
        unsatisfied = state.unsatisfied & jnp.any(best_possible > worst_finished, axis=-1, keepdims=True)
        go_on = (
            jnp.any(unsatisfied)
            & ~(jnp.all(is_finished) & consts.early_stopping)
            & ~jnp.all(hits)
        )
        return state.replace(
            cur_len=cur_len, running_sequences=running_sequences, running_scores=running_scores,
            sequences=sequences, scores=scores, is_finished=is_finished, unsatisfied=unsatisfied,
            done=~go_on, cache=cache,
        )

    def _beam_prefill(self, params, prompt, prompt_mask, processors, consts, encoder_inputs=None):
        self.traces += 1
        plan, nb = self.plan, self.plan.num_beams
        b, length = prompt.shape[0], plan.length
        encoder = self._encode(params, encoder_inputs)
        logits, cache, mask, positions = self._run_prompt(params, prompt, prompt_mask, encoder)  # once per prompt
        beams = lambda x: jnp.repeat(x, nb, axis=0)  # noqa: E731  [B, ...] -> [B * nb, ...]
        cache = map_cache_rows(lambda x, axis: jnp.repeat(x, nb, axis=axis), cache)
        sequences = jnp.concatenate(
            [prompt, jnp.full((b, plan.max_new_tokens), consts.pad_token_id, jnp.int32)], axis=1
        )
        sequences = jnp.broadcast_to(sequences[:, None, :], (b, nb, length))
        state = BeamState(
            cur_len=jnp.array(plan.bucket, jnp.int32), running_sequences=sequences,
            running_scores=jnp.tile(jnp.array([0.0] + [BIG_NEG] * (nb - 1), jnp.float32), (b, 1)),
            sequences=sequences, scores=jnp.full((b, nb), BIG_NEG, jnp.float32), is_finished=jnp.zeros((b, nb), bool),
            unsatisfied=jnp.ones((b, 1), bool), done=jnp.array(False), positions=beams(positions), mask=beams(mask),
            cache=cache, encoder=jax.tree_util.tree_map(beams, encoder),
        )
        return self._beam_select(state, beams(logits), processors, consts)

    def _beam_decode(self, params, state: BeamState, processors, consts, limit):
        self.traces += 1
        nb = self.plan.num_beams
        b = state.running_sequences.shape[0]

        def cond(s: BeamState):
            return (s.cur_len < limit) & ~s.done

        def body(s: BeamState):
            last = jax.lax.dynamic_slice(s.running_sequences, (0, 0, s.cur_len - 1), (b, nb, 1)).reshape(b * nb, 1)
            logits, cache = self._forward(params, s.cache, last, s.mask, s.positions[:, None], s.encoder)
            s = s.replace(cache=cache, positions=s.positions + 1)
            return self._beam_select(s, logits, processors, consts)

        return jax.lax.while_loop(cond, body, state)


def compiled_generator(model: Any, plan: Plan) -> CompiledGenerator:
    """The model's generator for `plan`, built once and kept on the model object."""
    store = model.__dict__.setdefault("_compiled_generators", {})
    key = (id(model.module), plan)
    if key not in store:
        store[key] = CompiledGenerator(model, plan)
    return store[key]


def length_denominators(max_new_tokens: int, length_penalty: float) -> np.ndarray:
    """n ** length_penalty for n = 0..max_new_tokens, in float64 then float32, as transformers computes it."""
    n = np.arange(max_new_tokens + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.power(n, float(length_penalty)).astype(np.float32)

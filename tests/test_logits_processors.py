"""Each logits processor against its transformers 5.x counterpart on random logits, and sampling
that never leaves the set the warpers allow."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers.generation import logits_process as tlp

from flaxformers.generation import engine
from flaxformers.generation import logits_process as flp

B, V, L = 4, 97, 24  # rows, vocabulary, buffer length
CUR = 15  # filled buffer columns
START = 3  # bucket padding in front of the caller's ids: ignored by every processor


def _case(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 12, (B, L)).astype(np.int32)  # a small alphabet, so n-grams repeat
    ids[:, 4:6] = ids[:, CUR - 2 : CUR]  # the current suffix occurred before: an n-gram to ban
    ids[:, CUR:] = 96  # unfilled columns: never read
    scores = (rng.standard_normal((B, V)) * 3).astype(np.float32)
    return ids, scores


def _ours_ids(ids):
    """The same ids behind START columns of bucket padding (token 0)."""
    padded = np.zeros((B, L + START), np.int32)
    padded[:, START:] = ids
    return padded


PAIRS = {  # name: (ours with start=START, transformers)
    "repetition": (flp.FlaxRepetitionPenaltyLogitsProcessor(np.float32(1.7), np.array([0, 2, 5, 0], np.int32),
                                                            np.int32(START)),
                   tlp.RepetitionPenaltyLogitsProcessor(1.7, prompt_ignore_length=torch.tensor([0, 2, 5, 0]))),
    "repetition_reward": (flp.FlaxRepetitionPenaltyLogitsProcessor(np.float32(0.5), 0, np.int32(START)),
                          tlp.RepetitionPenaltyLogitsProcessor(0.5)),
    "ngram2": (flp.FlaxNoRepeatNGramLogitsProcessor(2, np.int32(START)), tlp.NoRepeatNGramLogitsProcessor(2)),
    "ngram3": (flp.FlaxNoRepeatNGramLogitsProcessor(3, np.int32(START)), tlp.NoRepeatNGramLogitsProcessor(3)),
    "min_length_on": (flp.FlaxMinLengthLogitsProcessor(np.int32(CUR + 1), np.array([3, 7], np.int32),
                                                       np.int32(START)),
                      tlp.MinLengthLogitsProcessor(CUR + 1, [3, 7])),
    "min_length_off": (flp.FlaxMinLengthLogitsProcessor(np.int32(CUR), np.array([3], np.int32), np.int32(START)),
                       tlp.MinLengthLogitsProcessor(CUR, 3)),
    "min_new_tokens": (flp.FlaxMinNewTokensLengthLogitsProcessor(np.int32(10), np.int32(6), np.array([5], np.int32),
                                                                 np.int32(START)),
                       tlp.MinNewTokensLengthLogitsProcessor(10, 6, 5)),
    "forced_eos": (flp.FlaxForcedEOSTokenLogitsProcessor(np.int32(CUR + 1), np.array([4, 9], np.int32),
                                                         np.int32(START)),
                   tlp.ForcedEOSTokenLogitsProcessor(CUR + 1, [4, 9])),
    "forced_eos_off": (flp.FlaxForcedEOSTokenLogitsProcessor(np.int32(CUR + 5), np.array([4], np.int32),
                                                             np.int32(START)),
                       tlp.ForcedEOSTokenLogitsProcessor(CUR + 5, 4)),
    "suppress": (flp.FlaxSuppressTokensLogitsProcessor(np.array([1, 50, 96], np.int32)),
                 tlp.SuppressTokensLogitsProcessor([1, 50, 96])),
    "begin_suppress": (flp.FlaxSuppressTokensAtBeginLogitsProcessor(np.array([2, 8], np.int32), np.int32(CUR),
                                                                    np.int32(START)),
                       tlp.SuppressTokensAtBeginLogitsProcessor([2, 8], CUR)),
    "begin_suppress_off": (flp.FlaxSuppressTokensAtBeginLogitsProcessor(np.array([2], np.int32), np.int32(CUR - 1),
                                                                        np.int32(START)),
                           tlp.SuppressTokensAtBeginLogitsProcessor([2], CUR - 1)),
    "temperature": (flp.FlaxTemperatureLogitsWarper(np.float32(0.6)), tlp.TemperatureLogitsWarper(0.6)),
    "top_k": (flp.FlaxTopKLogitsWarper(7), tlp.TopKLogitsWarper(7)),
    "top_k_keep_min": (flp.FlaxTopKLogitsWarper(2, min_tokens_to_keep=5), tlp.TopKLogitsWarper(2, min_tokens_to_keep=5)),
    "top_p": (flp.FlaxTopPLogitsWarper(np.float32(0.8)), tlp.TopPLogitsWarper(0.8)),
    "top_p_keep_min": (flp.FlaxTopPLogitsWarper(np.float32(0.05), min_tokens_to_keep=3),
                       tlp.TopPLogitsWarper(0.05, min_tokens_to_keep=3)),
    "min_p": (flp.FlaxMinPLogitsWarper(np.float32(0.1)), tlp.MinPLogitsWarper(0.1)),
    "min_p_keep_min": (flp.FlaxMinPLogitsWarper(np.float32(0.9), min_tokens_to_keep=4),
                       tlp.MinPLogitsWarper(0.9, min_tokens_to_keep=4)),
}


@pytest.fixture(scope="module")
def all_ours():
    """Every processor of PAIRS in one compiled function (one compile for the whole table)."""

    @jax.jit
    def run(processors, ids, scores, cur_len):
        return {name: p(ids, scores, cur_len) for name, p in processors.items()}

    return run


@pytest.mark.parametrize("seed", [0, 1])
def test_each_processor_matches_transformers(all_ours, seed):
    ids, scores = _case(seed)
    ours = all_ours({k: v[0] for k, v in PAIRS.items()}, _ours_ids(ids), scores, np.int32(START + CUR))
    for name, (_, theirs) in PAIRS.items():
        expected = theirs(torch.tensor(ids[:, :CUR], dtype=torch.long), torch.tensor(scores)).numpy()
        got = np.asarray(ours[name])
        np.testing.assert_array_equal(np.isinf(got), np.isinf(expected), err_msg=f"{name}: filtered set differs")
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-6, atol=1e-6, err_msg=name)
        assert changed_or_identity(name, got, scores)


def changed_or_identity(name: str, got: np.ndarray, scores: np.ndarray) -> bool:
    """Guard against a vacuous comparison: processors meant to act do act on this input."""
    identity = name.endswith("_off")
    return bool(np.array_equal(got, scores)) == identity


def test_forced_bos_at_first_step():
    ours = flp.FlaxForcedBOSTokenLogitsProcessor(np.int32(6), np.int32(START))
    theirs = tlp.ForcedBOSTokenLogitsProcessor(6)
    ids, scores = _case()
    for cur in (1, 2):
        expected = theirs(torch.tensor(ids[:, :cur], dtype=torch.long), torch.tensor(scores)).numpy()
        np.testing.assert_array_equal(np.asarray(ours(_ours_ids(ids), scores, np.int32(START + cur))), expected)


def test_processor_list_and_bad_values():
    ids, scores = _case()
    chain = flp.FlaxLogitsProcessorList([PAIRS["temperature"][0], PAIRS["top_k"][0]])
    expected = PAIRS["top_k"][1](None, PAIRS["temperature"][1](None, torch.tensor(scores))).numpy()
    np.testing.assert_allclose(np.asarray(chain(ids, scores, CUR)), expected, rtol=1e-6)
    for bad in (lambda: flp.FlaxTemperatureLogitsWarper(0.0), lambda: flp.FlaxTopKLogitsWarper(0),
                lambda: flp.FlaxTopPLogitsWarper(1.5), lambda: flp.FlaxMinPLogitsWarper(-0.1),
                lambda: flp.FlaxRepetitionPenaltyLogitsProcessor(0.0), lambda: flp.FlaxNoRepeatNGramLogitsProcessor(0)):
        with pytest.raises(ValueError):
            bad()


def _sequential_warpers(scores, temperature, top_k, top_p, min_p):
    """transformers' warper chain (what generate builds for do_sample=True)."""
    s = torch.tensor(scores)
    chain = [tlp.TemperatureLogitsWarper(temperature)]
    if top_k:
        chain.append(tlp.TopKLogitsWarper(top_k))
    if top_p < 1.0:
        chain.append(tlp.TopPLogitsWarper(top_p))
    if min_p:
        chain.append(tlp.MinPLogitsWarper(min_p))
    for warper in chain:
        s = warper(None, s)
    return s.numpy()


SETTINGS = [(0.7, 20, 0.9, 0.05), (1.3, 50, 0.6, 0.0), (1.0, 5, 1.0, 0.2), (1.0, 0, 0.75, 0.0), (0.5, 0, 1.0, 0.3)]


def _plan(top_k, top_p):
    from flaxformers.generation.mixin import top_k_bucket

    return engine.Plan("sample", B, 16, 1, top_k_bucket=top_k_bucket(top_k, V) if top_k else 0,
                       full_top_p=not top_k and top_p < 1.0)


def _sampling(temperature, top_k, top_p, min_p):
    return engine.Sampling(np.float32(temperature), np.int32(top_k), np.float32(top_p), np.float32(min_p))


@pytest.mark.parametrize("settings", SETTINGS)
def test_fused_sampling_filter_equals_transformers_chain(settings):
    """The engine filters top-k candidates only; the allowed set equals transformers' whole-vocabulary chain."""
    _, scores = _case(2)
    plan = _plan(settings[1], settings[2])
    values, indices = jax.jit(engine.filter_candidates, static_argnums=2)(scores, _sampling(*settings), plan)
    full = np.full((B, V), -np.inf, np.float32)
    if indices is None:
        full = np.asarray(values)
    else:
        np.put_along_axis(full, np.asarray(indices), np.asarray(values), axis=1)
    expected = _sequential_warpers(scores, *settings)
    np.testing.assert_array_equal(np.isfinite(full), np.isfinite(expected))
    np.testing.assert_allclose(full[np.isfinite(full)], expected[np.isfinite(expected)], rtol=1e-6)


@pytest.mark.parametrize("settings", SETTINGS[:4])
def test_sampling_never_leaves_the_allowed_set(settings):
    """4,000 draws per row: every one is allowed, and the allowed tokens are drawn in proportion."""
    _, scores = _case(3)
    scores = scores / 2  # flatter, so the filters cut inside a spread distribution
    plan, sampling = _plan(settings[1], settings[2]), _sampling(*settings)
    draws = 4000
    sample = jax.jit(jax.vmap(lambda key: engine.sample_token(key, jnp.asarray(scores), sampling, plan)))
    tokens = np.asarray(sample(jax.random.split(jax.random.PRNGKey(0), draws)))  # [draws, B]
    allowed = _sequential_warpers(scores, *settings)
    for row in range(B):
        assert np.isfinite(allowed[row, tokens[:, row]]).all(), f"row {row} drew a filtered token"
        probs = torch.softmax(torch.tensor(allowed[row]), -1).numpy()
        counts = np.bincount(tokens[:, row], minlength=V) / draws
        assert np.abs(counts - probs).max() < 0.04  # 4,000 draws: a few standard errors
        assert (counts > 0).sum() >= min(2, (probs > 0).sum())  # not a degenerate (argmax) draw

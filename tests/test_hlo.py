"""The optimized HLO of the decode loop holds no weight-sized copies, transposes or converts.

transformers 4.x Flax GPT-2 spent its batch-1 step in 98 such copies: Conv1D kernels transposed
in the graph and `embedding.T` built for the tied head on every token.
"""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from flaxformers import (
    BertConfig,
    BloomConfig,
    FlaxBertForCausalLM,
    FlaxBloomForCausalLM,
    FlaxGemma3ForCausalLM,
    FlaxGemmaForCausalLM,
    FlaxGPT2LMHeadModel,
    FlaxGPTJForCausalLM,
    FlaxGPTNeoForCausalLM,
    FlaxLlamaForCausalLM,
    FlaxMistralForCausalLM,
    FlaxOPTForCausalLM,
    FlaxQwen3ForCausalLM,
    FlaxXGLMForCausalLM,
    Gemma3TextConfig,
    GemmaConfig,
    GPT2Config,
    GPTJConfig,
    GPTNeoConfig,
    LlamaConfig,
    MistralConfig,
    OPTConfig,
    Qwen3Config,
    XGLMConfig,
)
from flaxformers.generation import GenerationConfig, engine
from flaxformers.generation.batching import ContinuousBatcher
from flaxformers.generation.mixin import GenerationRequest
from flaxformers.nn.attention import (
    AttentionSpec,
    attention_mask_4d,
    blocked_attention,
    dot_product_attention,
)

# Every weight matrix has a distinct shape, larger than any activation or cache slice of the step.
CONFIG = dict(vocab_size=1000, n_positions=128, n_embd=96, n_layer=2, n_head=4, n_inner=320)
SUSPECT = re.compile(r"=\s*\w+\[([\d,]+)\][^ ]*\s+(copy|transpose|convert|dynamic-slice|slice|reverse)\(")


def weight_sized_ops(hlo: str, weight_shapes: set[tuple[int, ...]]) -> list[str]:
    """Ops that build an array with a weight's shape (or its transpose): a per-call copy of a weight."""
    targets = {tuple(sorted(s)) for s in weight_shapes}
    found = []
    for line in hlo.splitlines():
        match = SUSPECT.search(line)
        if match and tuple(sorted(int(d) for d in match.group(1).split(","))) in targets:
            found.append(line.strip()[:160])
    return found


def _decode_hlo(model: FlaxGPT2LMHeadModel, params, batch: int) -> str:
    ids = np.arange(batch * 9, dtype=np.int32).reshape(batch, 9) % 900
    config = GenerationConfig(max_new_tokens=8, eos_token_id=None, pad_token_id=0)
    request = GenerationRequest.build(model, ids, None, config, False, {})
    gen = engine.compiled_generator(model, request.plan)
    args = (request.processors, request.sampling, request.consts)
    state, _, _ = gen.prefill(params, request.ids, request.mask, *args, jax.random.PRNGKey(0))
    return gen.decode.lower(params, state, *args, np.int32(request.plan.length)).compile().as_text()


@pytest.fixture(scope="module")
def model_params():
    model = FlaxGPT2LMHeadModel(GPT2Config(**CONFIG), _do_init=False)
    params = jax.jit(model.init_weights, static_argnums=1)(jax.random.PRNGKey(0), (1, 1))  # one compile, not op by op
    return model, params


def _weight_shapes(params) -> set[tuple[int, ...]]:
    return {tuple(x.shape) for x in jax.tree_util.tree_leaves(params) if x.ndim == 2}


@pytest.mark.parametrize("batch", [1, 4])
def test_decode_step_copies_no_weight(model_params, batch):
    model, params = model_params
    shapes = _weight_shapes(params)
    assert len(shapes) == 6  # c_attn, attn c_proj, c_fc, mlp c_proj, wte, wpe
    hlo = _decode_hlo(model, params, batch)
    assert "while" in hlo  # the decode loop is one compiled while loop
    assert not weight_sized_ops(hlo, shapes), "\n".join(weight_sized_ops(hlo, shapes))


# The other decoders, with weight shapes that no activation or cache slice of their step has.
OTHER_DECODERS = {
    "gemma-mqa": lambda: FlaxGemmaForCausalLM(GemmaConfig(
        vocab_size=1000, hidden_size=96, intermediate_size=320, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, head_dim=40), _do_init=False),
    "gemma3-gqa": lambda: FlaxGemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=1000, hidden_size=96, intermediate_size=320, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=40, sliding_window=4), _do_init=False),
    "llama-gqa-tied": lambda: FlaxLlamaForCausalLM(LlamaConfig(
        vocab_size=1000, hidden_size=96, intermediate_size=320, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=40, tie_word_embeddings=True, attention_bias=True), _do_init=False),
    "mistral-sliding": lambda: FlaxMistralForCausalLM(MistralConfig(
        vocab_size=1000, hidden_size=96, intermediate_size=320, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=40, sliding_window=4), _do_init=False),
    "qwen3-qknorm": lambda: FlaxQwen3ForCausalLM(Qwen3Config(
        vocab_size=1000, hidden_size=96, intermediate_size=320, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=40), _do_init=False),
    "bloom": lambda: FlaxBloomForCausalLM(BloomConfig(vocab_size=1000, hidden_size=96, n_layer=2, n_head=4),
                                          _do_init=False),
    "bert-decoder": lambda: FlaxBertForCausalLM(BertConfig(
        vocab_size=1000, hidden_size=96, intermediate_size=320, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64, is_decoder=True), _do_init=False),
    "gpt-neo": lambda: FlaxGPTNeoForCausalLM(GPTNeoConfig(
        vocab_size=1000, hidden_size=96, intermediate_size=320, num_layers=2, num_heads=4, max_position_embeddings=64,
        attention_types=[[["global", "local"], 1]], window_size=4), _do_init=False),
    # opt-350m's layout: 80-wide word embeddings projected in and out of the 96-wide model
    "opt-projected": lambda: FlaxOPTForCausalLM(OPTConfig(
        vocab_size=1000, hidden_size=96, ffn_dim=320, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64, word_embed_proj_dim=80, do_layer_norm_before=False), _do_init=False),
    "xglm": lambda: FlaxXGLMForCausalLM(XGLMConfig(
        vocab_size=1000, d_model=96, ffn_dim=320, num_layers=2, attention_heads=4, max_position_embeddings=64),
        _do_init=False),
    "gptj": lambda: FlaxGPTJForCausalLM(GPTJConfig(
        vocab_size=1000, n_embd=96, n_inner=320, n_layer=2, n_head=4, n_positions=64, rotary_dim=16), _do_init=False),
}


@pytest.mark.parametrize("family", list(OTHER_DECODERS))
def test_other_decoders_copy_no_weight(family):
    model = OTHER_DECODERS[family]()
    params = jax.jit(model.init_weights, static_argnums=1)(jax.random.PRNGKey(0), (1, 1))
    hlo = _decode_hlo(model, params, batch=2)
    assert "while" in hlo
    assert not weight_sized_ops(hlo, _weight_shapes(params)), "\n".join(weight_sized_ops(hlo, _weight_shapes(params)))


def test_the_counter_sees_a_transposed_weight(model_params):
    """The check can fail: a graph that transposes its kernel (transformers 4.x's Conv1D) is caught."""
    kernel = model_params[1]["transformer"]["h"]["0"]["mlp"]["c_fc"]["kernel"]  # [out, in]
    x = np.ones((1, kernel.shape[1]), np.float32)
    hlo = jax.jit(lambda k, x: x @ k.T.copy() + k.T.sum()).lower(kernel, x).compile().as_text()
    assert weight_sized_ops(hlo, {tuple(kernel.shape)})


def test_long_prompts_prefill_in_chunks_without_a_full_score_matrix():
    """A 1024-token prompt prefills in 512-token chunks that attend block by block (512 keys at a time):
    no [.., T, S] array with T = S = 1024 is built, while the same prompt through a plain forward
    builds one (so the check can fail); and the first new token is the plain forward's."""
    model = FlaxGPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=1100, n_embd=16, n_layer=1, n_head=2),
                                _do_init=False)
    params = jax.jit(model.init_weights, static_argnums=1)(jax.random.PRNGKey(0), (1, 1))
    ids = (np.arange(1024, dtype=np.int32) * 7 % 97)[None]
    config = GenerationConfig(max_new_tokens=4, eos_token_id=None, pad_token_id=0)
    request = GenerationRequest.build(model, ids, None, config, False, {})
    assert request.plan.bucket == 1024
    gen = engine.compiled_generator(model, request.plan)
    args = (request.processors, request.sampling, request.consts)
    prefill = gen.prefill.lower(params, request.ids, request.mask, *args, jax.random.PRNGKey(0))
    hlo = prefill.compile().as_text()
    square = re.compile(r"f32\[(\d+,)*1024,(1028|1024)\]")  # scores [B, N, T, S] with S = 1024 + 4 new tokens
    chunk_by_all = re.compile(r"f32\[(\d+,)*512,1028\]")  # a chunk's scores over the whole cache
    assert not square.search(hlo) and not chunk_by_all.search(hlo)
    assert re.search(r"f32\[(\d+,)*512,512\]", hlo)  # a chunk's scores over one key block
    plain = jax.jit(lambda p, x: model(x, params=p).logits[:, -1])
    assert square.search(plain.lower(params, ids).compile().as_text())
    _, first, _ = gen.prefill(params, request.ids, request.mask, *args, jax.random.PRNGKey(0))
    assert int(first[0]) == int(np.argmax(plain(params, ids)[0]))


def test_blocked_attention_equals_attention_over_all_keys():
    """A chunk's block-by-block attention over the engine cache equals plain attention over every key:
    blocks that do not divide the cache (the last one overlaps), rows at their own offsets, a sliding
    window, soft-capping, an additive bias and padding."""
    b, t, n, k, h, s = 2, 5, 4, 2, 8, 40
    rng = np.random.default_rng(0)
    query = rng.normal(size=(b, t, n, h)).astype(np.float32)
    keys, values = rng.normal(size=(2, b, k, s, h)).astype(np.float32)  # the cache, [B, K, S, H]
    offset = np.array([30, 17], np.int32)  # each row's first query slot
    padding = (np.arange(s) >= np.array([[0], [3]])).astype(np.int32)  # row 1 left-padded
    bias = rng.normal(size=(1, n, 1, s)).astype(np.float32)
    spec = AttentionSpec(scale=0.3, sliding_window=20, softcap=2.0)
    got = blocked_attention(query, keys, values.transpose(0, 1, 3, 2), spec, offset, padding, bias, block=16)
    mask = attention_mask_4d(t, s, offset, padding, sliding_window=20)
    want, _ = dot_product_attention(query, keys, values, spec, mask, bias, layout="bksh")
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


@pytest.mark.parametrize("rows", [4, 1])
def test_batcher_step_copies_no_cache(rows):
    """The batcher's decode step updates its donated cache in place: no cache-sized array is built (a
    copy, or a scatter into a fresh buffer), and the attention reads only its window of key slots, of
    only the rows it steps. The same step without donation copies the cache (so the check can fail)."""
    model = FlaxLlamaForCausalLM(LlamaConfig(
        vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=128))
    batcher = ContinuousBatcher(model, slots=4, max_length=96, chunk=32, min_window=32)
    batcher.close()
    args = (batcher.params, batcher.cache, np.zeros(4, np.int32), np.full(4, 5, np.int32),
            batcher._sampling([None] * 4), 32, rows)
    cache_shapes = {tuple(x.shape) for x in jax.tree_util.tree_leaves(batcher.cache) if x.ndim == 4}
    assert cache_shapes == {(4, 2, 97, 16), (4, 2, 16, 97)}  # keys [B, K, S, H], values [B, K, H, S]
    hlo = batcher._decode.lower(*args).compile().as_text()
    assert not _cache_sized_ops(hlo), "\n".join(_cache_sized_ops(hlo))
    assert re.search(rf"f32\[{rows},2,32,16\]", hlo)  # the step's window: 32 of the 97 key slots of its rows
    assert rows == 4 or not re.search(r"f32\[4,2,32,16\]", hlo)
    undonated = jax.jit(batcher._decode_step, static_argnums=(5, 6)).lower(*args).compile().as_text()
    assert _cache_sized_ops(undonated)


def _cache_sized_ops(hlo: str) -> list[str]:
    """Ops that build a [4, 2, 97, 16] / [4, 2, 16, 97] array, other than the in-place write itself (a
    scatter, or for one row a dynamic-update-slice, fused or not)."""
    sized = re.compile(r"=\s*f32\[4,2,(97,16|16,97)\]\S*\s+(\S+)\(")
    return [line.strip()[:160] for line in hlo.splitlines()
            if (m := sized.search(line)) and m.group(2) not in ("parameter", "bitcast", "get-tuple-element")
            and not re.search(r"wrapped_scatter|dynamic-update-slice_fusion", line)
            and m.group(2) not in ("scatter", "dynamic-update-slice")]

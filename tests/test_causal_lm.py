"""Every causal LM against transformers' PyTorch class on the same tiny random weights: one harness.

A case is a transformers config (2 layers, hidden 32) saved by transformers with `save_pretrained`,
its norm weights randomised (transformers initialises them at 1 or 0, which would hide a swapped
norm), then loaded by `FlaxAutoModelForCausalLM`. Adding a family adds entries to `CASES`; the
family's own test file keeps only what is its own (config quirks, extra switches).

Every call uses [2, SEQ] or [2, CHUNK] inputs, so each case compiles its forward once per shape.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers.auto import FlaxAutoModel, FlaxAutoModelForCausalLM
from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import flatten

SEQ, CHUNK = 12, 3  # sequences are longer than every sliding window below
VOCAB = 97
STATIC = ("output_attentions", "output_hidden_states", "return_dict", "train", "deterministic")


def _edit_config(path: str, fn: Callable[[dict], None]) -> None:
    file = os.path.join(path, "config.json")
    with open(file) as f:
        config = json.load(f)
    fn(config)
    with open(file, "w") as f:
        json.dump(config, f)


def _legacy_gelu(config: dict) -> None:
    """The legacy `hidden_act: "gelu"` that released Gemma configs carry (meaning the tanh approximation)."""
    config.update(hidden_act="gelu")


def _gemma3_4x_keys(config: dict) -> None:
    """transformers 5's rope/layer keys rewritten the way Gemma 3 270M's config.json spells them (4.x)."""
    for key in ("rope_parameters", "layer_types", "_sliding_window_pattern"):
        config.pop(key, None)
    config.update(rope_theta=1000.0, rope_local_base_freq=50.0, sliding_window_pattern=2,
                  rope_scaling={"rope_type": "linear", "factor": 4.0})


@dataclass(frozen=True)
class Case:
    config: str  # transformers config class
    model: str  # transformers causal-LM class
    kwargs: dict[str, Any]
    edit: Callable[[dict], None] | None = None  # rewrites the saved config.json before both sides load it
    # generate() checks: 1 is greedy (beam search compiles the most). The engine is shared, so each causal
    # class generates in one case; its other cases check the same cache through cached decoding.
    beams: tuple[int, ...] = ()
    gradients: bool = False  # loss and gradients (with remat) against PyTorch's
    scan: bool = False  # scan-over-layers: parity and cached decoding
    biases: bool = False  # random projection biases (transformers initialises them at 0, which would hide one)


GPT2 = dict(n_embd=32, n_layer=2, n_head=4, n_positions=48, bos_token_id=0, eos_token_id=0)
GEMMA = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=64, pad_token_id=0, bos_token_id=2, eos_token_id=1)
BLOOM = dict(hidden_size=48, n_layer=2, bos_token_id=1, eos_token_id=2, pad_token_id=0)
LLAMA = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2, initializer_range=0.1)


def _yarn_4x_keys(config: dict) -> None:
    """transformers 5's rope_parameters rewritten in the 4.x spelling: rope_theta + rope_scaling with `type`."""
    config.pop("rope_parameters", None)
    config.update(rope_theta=1000.0, rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16})
OPT = dict(hidden_size=32, ffn_dim=40, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=48,
           pad_token_id=1, bos_token_id=2, eos_token_id=2)
XGLM = dict(d_model=32, ffn_dim=40, num_layers=2, attention_heads=4, max_position_embeddings=48, pad_token_id=1,
            bos_token_id=0, eos_token_id=2)
GPTJ = dict(n_embd=32, n_layer=2, n_head=4, n_positions=48, bos_token_id=0, eos_token_id=0)
GPT_NEO = dict(hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=48, bos_token_id=0, eos_token_id=0)

CASES: dict[str, Case] = {
    # --- GPT-2 ---
    "gpt2": Case("GPT2Config", "GPT2LMHeadModel", GPT2, beams=(1, 3), gradients=True),
    # the two attention scalings are independent switches in transformers: one off, one on
    "gpt2-inverse-layer-idx-unscaled-untied": Case(
        "GPT2Config", "GPT2LMHeadModel",
        {**GPT2, "scale_attn_by_inverse_layer_idx": True, "activation_function": "gelu", "scale_attn_weights": False,
         "n_inner": 40, "tie_word_embeddings": False}, scan=True),
    # --- Gemma 1, 2, 3 ---
    # head_dim 16 != hidden / heads = 8; one key/value head; tied head; the legacy "gelu" of released configs
    "gemma-mqa-legacy-gelu": Case("GemmaConfig", "GemmaForCausalLM",
                                  {**GEMMA, "num_key_value_heads": 1, "head_dim": 16}, edit=_legacy_gelu),
    # two key/value heads; untied head; biases; linear rope scaling in transformers 5's spelling
    "gemma-gqa": Case("GemmaConfig", "GemmaForCausalLM",
                      {**GEMMA, "num_key_value_heads": 2, "head_dim": 12, "tie_word_embeddings": False,
                       "attention_bias": True,
                       "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}},
                      beams=(1, 3), gradients=True),
    # sliding window 5 on layer 0, global layer 1; both soft-caps active at these weight scales
    "gemma2": Case("Gemma2Config", "Gemma2ForCausalLM",
                   {**GEMMA, "num_key_value_heads": 2, "head_dim": 8, "query_pre_attn_scalar": 24, "sliding_window": 5,
                    "attn_logit_softcapping": 2.0, "final_logit_softcapping": 2.5, "initializer_range": 0.2,
                    "tie_word_embeddings": False}, beams=(1,)),
    # sliding window 4, local rope base 50, global base 1000 with linear scaling x4, q/k norms, MQA
    "gemma3": Case("Gemma3TextConfig", "Gemma3ForCausalLM",
                   {**GEMMA, "num_key_value_heads": 1, "head_dim": 16, "sliding_window": 4, "sliding_window_pattern": 2,
                    "initializer_range": 0.1},
                   edit=_gemma3_4x_keys, beams=(1, 3), scan=True),
    # --- BLOOM: 3 and 6 heads are not powers of two, so ALiBi adds a second slope series ---
    "bloom-heads3-untied": Case("BloomConfig", "BloomForCausalLM", {**BLOOM, "n_head": 3, "tie_word_embeddings": False},
                                gradients=True, beams=(1, 3)),
    "bloom-heads4-post-ln-residual": Case("BloomConfig", "BloomForCausalLM",
                                          {**BLOOM, "n_head": 4, "apply_residual_connection_post_layernorm": True},
                                          scan=True),
    # --- Llama, Mistral ---
    # GQA, untied, attention and MLP biases; llama3 rope (8 dims: one frequency kept, one blended, two divided)
    "llama-gqa-llama3-bias": Case("LlamaConfig", "LlamaForCausalLM",
                                  {**LLAMA, "num_key_value_heads": 2, "attention_bias": True, "mlp_bias": True,
                                   "rope_parameters": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                       "high_freq_factor": 4.0, "rope_theta": 500.0,
                                                       "original_max_position_embeddings": 32}},
                                  beams=(1, 3), gradients=True, biases=True),
    # MQA, head_dim 16 != hidden / heads, tied head; yarn (attention factor 1.14) in the 4.x spelling
    "llama-mqa-tied-yarn": Case("LlamaConfig", "LlamaForCausalLM",
                                {**LLAMA, "num_key_value_heads": 1, "head_dim": 16, "tie_word_embeddings": True},
                                edit=_yarn_4x_keys, scan=True),
    # every layer slides over 5 keys; linear rope scaling
    "mistral-window": Case("MistralConfig", "MistralForCausalLM",
                           {**LLAMA, "num_key_value_heads": 2, "sliding_window": 5,
                            "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 300.0}},
                           beams=(1,)),
    # --- Qwen2: q/k/v biases, tied head; layer 1 slides over 4 keys (max_window_layers=1) ---
    "qwen2-bias-sliding": Case("Qwen2Config", "Qwen2ForCausalLM",
                               {**LLAMA, "num_key_value_heads": 2, "tie_word_embeddings": True,
                                "use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1},
                               biases=True, scan=True, beams=(1,)),
    # --- Qwen3: q/k norms, attention biases, head_dim 16; longrope (short factors, attention factor 1.09) ---
    "qwen3-qknorm-longrope": Case("Qwen3Config", "Qwen3ForCausalLM",
                                  {**LLAMA, "num_key_value_heads": 2, "head_dim": 16, "attention_bias": True,
                                   "rope_parameters": {"rope_type": "longrope", "rope_theta": 300.0,
                                                       "original_max_position_embeddings": 32,
                                                       "short_factor": [1.0, 1.2, 1.5, 1.9, 2.4, 3.0, 3.7, 4.5],
                                                       "long_factor": [2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]}},
                                  biases=True, beams=(1,)),
    # --- GPT-Neo: a global layer, then a local one over a window of 5 keys (sequences are 12 long) ---
    "gpt-neo-global-local": Case("GPTNeoConfig", "GPTNeoForCausalLM",
                                 {**GPT_NEO, "attention_types": [[["global", "local"], 1]], "window_size": 5},
                                 gradients=True, scan=True, beams=(1,)),
    # local first, window 3; untied head, exact gelu, a narrower MLP
    "gpt-neo-local-global-untied": Case("GPTNeoConfig", "GPTNeoForCausalLM",
                                        {**GPT_NEO, "attention_types": [[["local", "global"], 1]], "window_size": 3,
                                         "intermediate_size": 40, "activation_function": "gelu",
                                         "tie_word_embeddings": False}),
    # --- OPT: positions read 2 rows into their table and count real tokens (left padding) ---
    "opt-pre-norm": Case("OPTConfig", "OPTForCausalLM", OPT, beams=(1, 3), gradients=True, scan=True),
    # opt-350m's layout: post-norm, 16-wide word embeddings projected in and out of the 32-wide model
    "opt-350m-post-norm-projected": Case("OPTConfig", "OPTForCausalLM",
                                         {**OPT, "do_layer_norm_before": False, "word_embed_proj_dim": 16}),
    # no biases, norms without weights, no final norm (old checkpoints), untied head, gelu
    "opt-bare-untied": Case("OPTConfig", "OPTForCausalLM",
                            {**OPT, "enable_bias": False, "layer_norm_elementwise_affine": False,
                             "_remove_final_layer_norm": True, "tie_word_embeddings": False,
                             "activation_function": "gelu"}),
    # --- XGLM: sinusoidal positions read 2 rows in, embeddings scaled by sqrt(d_model) ---
    "xglm": Case("XGLMConfig", "XGLMForCausalLM", XGLM, gradients=True, scan=True, beams=(1,)),
    # odd width (a zero column after the cosines), unscaled embeddings, untied head, relu, and
    # pad_token_id 5: transformers zeroes table row 5, which is position 3
    "xglm-odd-unscaled-untied-pad5": Case("XGLMConfig", "XGLMForCausalLM",
                                          {**XGLM, "d_model": 33, "attention_heads": 3, "scale_embedding": False,
                                           "tie_word_embeddings": False, "activation_function": "relu",
                                           "pad_token_id": 5}),
    # --- GPT-J: parallel attention and MLP; rotary positions on 4 of each head's 8 dims, pairs (2i, 2i+1) ---
    "gptj-partial-rotary": Case("GPTJConfig", "GPTJForCausalLM", {**GPTJ, "rotary_dim": 4},
                                gradients=True, scan=True, beams=(1,)),
    # the whole head rotated; head tied to the embedding (its bias kept); exact gelu, narrower MLP
    "gptj-full-rotary-tied": Case("GPTJConfig", "GPTJForCausalLM",
                                  {**GPTJ, "rotary_dim": 8, "tie_word_embeddings": True, "n_inner": 40,
                                   "activation_function": "gelu"}),
}


@dataclass
class Built:
    name: str
    case: Case
    path: str
    ref: Any  # transformers model, eager attention
    ours: Any
    forward: Any  # jitted ours.__call__
    ids: np.ndarray  # [2, SEQ]
    out: Any  # our full forward with hidden states and attentions
    expected: Any  # transformers' on the same ids

    def call(self, ids, mask=None, positions=None, **kwargs):
        if positions is not None and _takes_positions(self.ours):
            kwargs["position_ids"] = positions
        return self.forward(ids, attention_mask=mask, **kwargs)


def _takes_positions(model) -> bool:
    return "position_ids" in inspect.signature(model.__call__).parameters


def _jit(model):
    """`model.__call__` jitted, its flags static (`train`, or `deterministic` as 4.57's OPT has it)."""
    parameters = inspect.signature(model.__call__).parameters
    return jax.jit(model.__call__, static_argnames=[a for a in STATIC if a in parameters])


def _torch(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.long)


_BUILT: dict[str, Built] = {}


def build(name: str, tmp_path_factory) -> Built:
    if name in _BUILT:
        return _BUILT[name]
    case = CASES[name]
    torch.manual_seed(0)
    config = getattr(transformers, case.config)(vocab_size=VOCAB, **case.kwargs)
    ref_cls = getattr(transformers, case.model)
    ref = ref_cls(config).eval()
    with torch.no_grad():
        for pname, p in ref.named_parameters():
            if "norm" in pname or "ln" in pname:
                p.normal_(1.0 if "weight" in pname else 0.0, 0.5)
            elif case.biases and pname.endswith(".bias"):
                p.normal_(0.0, 0.5)
    path = str(tmp_path_factory.mktemp(name))
    ref.save_pretrained(path)
    if case.edit is not None:
        _edit_config(path, case.edit)
    ref = ref_cls.from_pretrained(path, attn_implementation="eager").eval()
    ours = FlaxAutoModelForCausalLM.from_pretrained(path)
    forward = _jit(ours)
    ids = np.random.RandomState(0).randint(3, VOCAB, (2, SEQ)).astype(np.int32)
    built = Built(name, case, path, ref, ours, forward, ids, None, None)
    built.out = built.call(ids, np.ones_like(ids), np.broadcast_to(np.arange(SEQ), ids.shape),
                           output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        built.expected = ref(_torch(ids), output_hidden_states=True, output_attentions=True)
    _BUILT[name] = built
    return built


def _per_case(params: list) -> list:
    """Parameters (a case name first) that run on one xdist worker per case: its models are built once."""
    out = []
    for values in params:
        values = values if isinstance(values, tuple) else (values,)
        out.append(pytest.param(*values, marks=pytest.mark.xdist_group(f"causal-{values[0]}")))
    return out


@pytest.fixture(scope="module")
def built(request, tmp_path_factory) -> Built:
    return build(request.param, tmp_path_factory)


every_case = pytest.mark.parametrize("built", _per_case(list(CASES)), indirect=True)


def _cases_with(flag: str) -> list:
    return _per_case([name for name, case in CASES.items() if getattr(case, flag)])


# --- parity ----------------------------------------------------------------------------------------
@every_case
def test_logits_hidden_states_attentions_match(built):
    out, expected = built.out, built.expected
    assert_close(out.logits, expected.logits, what="logits")
    assert len(out.hidden_states) == len(expected.hidden_states) == 3
    for i, (a, b) in enumerate(zip(out.hidden_states, expected.hidden_states)):
        assert_close(a, b, what=f"hidden_states[{i}]")
    assert len(out.attentions) == len(expected.attentions) == 2
    for i, (a, b) in enumerate(zip(out.attentions, expected.attentions)):
        assert_close(a, b, what=f"attentions[{i}]")


@every_case
def test_tuple_output_and_base_model(built):
    as_tuple = built.call(built.ids, np.ones_like(built.ids), np.broadcast_to(np.arange(SEQ), built.ids.shape),
                          output_hidden_states=True, output_attentions=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 3
    np.testing.assert_array_equal(as_tuple[0], built.out.logits)
    base = FlaxAutoModel.from_pretrained(built.path)  # the head checkpoint's base-model prefix is stripped
    assert not base.can_generate() and type(built.ours).can_generate()
    with torch.no_grad():
        expected = built.ref.base_model(_torch(built.ids)).last_hidden_state
    assert_close(base(built.ids).last_hidden_state, expected, what="base last_hidden_state")


def _cache_indices(cache) -> set[int]:
    return {int(v) for k, v in flatten(cache).items() if k[-1] == "cache_index"}


@every_case
def test_cached_decoding_equals_full_forward(built):
    """The sequence in chunks of CHUNK through the static cache (across the sliding windows)."""
    ids, batch = built.ids, built.ids.shape[0]
    cache = built.ours.init_cache(batch, SEQ)
    mask = np.ones((batch, SEQ), np.int32)
    steps = []
    for start in range(0, SEQ, CHUNK):
        positions = np.broadcast_to(np.arange(start, start + CHUNK), (batch, CHUNK))
        out = built.call(ids[:, start:start + CHUNK], mask, positions, past_key_values=cache)
        steps.append(np.asarray(out.logits))
        cache = out.past_key_values
    assert_close(np.concatenate(steps, axis=1), built.out.logits, what="cached vs full")
    assert _cache_indices(cache) == {SEQ}


@every_case
def test_left_padded_batch_equals_rows_alone(built):
    short = 7
    ids, mask = built.ids.copy(), np.ones_like(built.ids)
    ids[1, :SEQ - short], mask[1, :SEQ - short] = 0, 0
    positions = np.maximum(mask.cumsum(-1) - 1, 0)
    logits = np.asarray(built.call(ids, mask, positions, output_hidden_states=True, output_attentions=True).logits)
    assert_close(logits[0], built.expected.logits[0], what="unpadded row")
    with torch.no_grad():
        alone = built.ref(_torch(ids[1:, SEQ - short:])).logits[0]
    assert_close(logits[1, SEQ - short:], alone, what="left-padded row vs the row alone")


# --- checkpoints -----------------------------------------------------------------------------------
@every_case
def test_save_then_load_in_transformers(built, tmp_path):
    built.ours.save_pretrained(tmp_path)
    reloaded, info = getattr(transformers, built.case.model).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    with torch.no_grad():
        expected = reloaded.eval()(_torch(built.ids)).logits
    assert_close(built.out.logits, expected, what="transformers reload")
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["architectures"] == [built.case.model]


@every_case
def test_msgpack_round_trip(built, tmp_path):
    built.ours.save_pretrained(tmp_path, safe_serialization=False)
    assert os.listdir(tmp_path).count(io.FLAX_WEIGHTS_NAME) == 1 and io.SAFE_WEIGHTS_NAME not in os.listdir(tmp_path)
    again = type(built.ours).from_pretrained(tmp_path)
    for path, value in flatten(built.ours.params).items():
        np.testing.assert_array_equal(flatten(again.params)[path], value)


# --- generate --------------------------------------------------------------------------------------
PROMPT = np.array([[11, 42, 7, 19, 83, 5], [0, 0, 64, 23, 9, 51]], np.int32)  # row 1 left-padded
PROMPT_MASK = (np.arange(PROMPT.shape[1]) >= np.array([[0], [2]])).astype(np.int32)


@pytest.mark.parametrize("name, num_beams", _per_case([(n, b) for n, c in CASES.items() for b in c.beams]))
def test_generate_matches_transformers(name, num_beams, tmp_path_factory):
    """10 new tokens from a left-padded 6-token prompt (decoding runs past the sliding windows)."""
    built = build(name, tmp_path_factory)
    config = built.ours.config
    settings = dict(max_new_tokens=10, num_beams=num_beams, do_sample=False, pad_token_id=config.pad_token_id or 0,
                    eos_token_id=config.eos_token_id)
    ours = built.ours.generate(PROMPT, attention_mask=PROMPT_MASK, **settings).sequences
    with torch.no_grad():
        expected = built.ref.generate(_torch(PROMPT), attention_mask=_torch(PROMPT_MASK), **settings)
    np.testing.assert_array_equal(np.asarray(ours), expected.numpy())


# --- training ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", _cases_with("gradients"))
def test_loss_and_gradients_match_through_remat(name, tmp_path_factory):
    """Next-token loss and every gradient equal PyTorch's, with gradient checkpointing on."""
    built = build(name, tmp_path_factory)
    model = type(built.ours).from_pretrained(built.path)
    model.enable_gradient_checkpointing()
    ids = built.ids

    def loss_fn(params):
        logits = model(ids, params=params).logits[:, :-1]
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, jnp.asarray(ids)[:, 1:, None], axis=-1).mean()

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(model.params)
    built.ref.zero_grad()
    ref_loss = built.ref(_torch(ids), labels=_torch(ids)).loss
    ref_loss.backward()
    assert_close(loss, ref_loss.detach(), what="loss")
    expected = {name: p.grad for name, p in built.ref.named_parameters()}
    from flaxformers.checkpoints.convert import flax_to_state_dict

    ours = flax_to_state_dict({p: np.asarray(g) for p, g in flatten(grads).items()}, model._conversion_rules(model.config))
    for pt_name, grad in ours.items():
        assert_close(grad, expected[pt_name], what=f"grad {pt_name}")


@pytest.mark.parametrize("name", _cases_with("scan"))
def test_scan_layers_parity_and_cache(name, tmp_path_factory):
    """Scan-over-layers stacks params and cache on a leading axis; outputs and cached decoding don't change."""
    built = build(name, tmp_path_factory)
    scanned = type(built.ours).from_pretrained(built.path, scan_layers=True)
    forward = _jit(scanned)
    assert_close(forward(built.ids).logits, built.expected.logits, what="scan logits")
    cache = scanned.init_cache(2, SEQ)
    mask = np.ones((2, SEQ), np.int32)
    steps = []
    for start in range(0, SEQ, CHUNK):
        kwargs = {"position_ids": np.broadcast_to(np.arange(start, start + CHUNK), (2, CHUNK))} if (
            _takes_positions(scanned)) else {}
        out = forward(built.ids[:, start:start + CHUNK], attention_mask=mask, past_key_values=cache, **kwargs)
        steps.append(np.asarray(out.logits))
        cache = out.past_key_values
    assert_close(np.concatenate(steps, axis=1), built.expected.logits, what="scan cached vs full")
    assert any("scanned" in path for path in flatten(cache))

"""Every encoder family and head against transformers' PyTorch class on the same tiny random weights: one harness.

A case is a transformers config (2 layers, hidden 32) and the heads of its family. For each head,
transformers builds the model, its norm weights and biases are randomised (transformers initialises
them at 1 or 0, which would hide a swapped norm or bias), it is saved with `save_pretrained` and
loaded by our class of the same name. Checked per head: outputs, hidden states and attentions;
the head's loss (flaxformers.training.losses) and every gradient (with remat too, on one head per case); a save
that transformers reloads without missing or unexpected keys; the msgpack round trip. Causal-LM
heads also decode through the cache and `generate` like transformers.

Calls run eagerly: every case shares the shapes below, so JAX's per-op compile cache serves all of
them, which is cheaper than compiling each head's forward and backward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close, max_abs_diff

import flaxformers
from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import flatten, flax_to_state_dict
from flaxformers.training.losses import get_task_loss, task_for_model

B, T, VOCAB = 2, 8, 99
ENCODER = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
               max_position_embeddings=64, type_vocab_size=2)
HEADS = ("Model", "ForMaskedLM", "ForSequenceClassification", "ForMultipleChoice", "ForTokenClassification",
         "ForQuestionAnswering")
# head -> config overrides transformers needs for it
HEAD_CONFIG = {"ForSequenceClassification": {"num_labels": 3}, "ForTokenClassification": {"num_labels": 5},
               "ForCausalLM": {"is_decoder": True, "eos_token_id": None}}  # generate runs its max_new_tokens


@dataclass(frozen=True)
class Case:
    config: str  # transformers config class
    prefix: str  # class-name prefix: transformers' and ours (with Flax)
    heads: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    torch_names: dict[str, str] = field(default_factory=dict)  # head -> transformers class, where it differs
    seq_len: int = T
    token_types: bool = True  # the family takes segment ids
    # heads whose transformers 4.x Flax param tree has no pooler where transformers 5's module has one
    # (unused by the head): transformers initialises it on reload
    no_pooler: tuple[str, ...] = ()


CASES: dict[str, Case] = {
    "bert": Case("BertConfig", "Bert", HEADS + ("ForPreTraining", "ForNextSentencePrediction", "ForCausalLM"),
                 ENCODER, {"ForCausalLM": "BertLMHeadModel"}),
    "roberta": Case("RobertaConfig", "Roberta", HEADS + ("ForCausalLM",), {**ENCODER, "pad_token_id": 1}),
    "xlm-roberta": Case("XLMRobertaConfig", "XLMRoberta", HEADS + ("ForCausalLM",), {**ENCODER, "pad_token_id": 1}),
    "electra": Case("ElectraConfig", "Electra", HEADS + ("ForPreTraining", "ForCausalLM"),
                    {**ENCODER, "embedding_size": 24}),
    "albert": Case("AlbertConfig", "Albert", HEADS + ("ForPreTraining",),
                   {**ENCODER, "embedding_size": 24, "num_hidden_layers": 3, "num_hidden_groups": 2, "inner_group_num": 2,
                    "hidden_act": "gelu_new"}),
    "distilbert": Case("DistilBertConfig", "DistilBert", HEADS,
                       dict(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64),
                       token_types=False),
    "distilbert-sinusoidal": Case("DistilBertConfig", "DistilBert", ("Model", "ForMaskedLM"),
                                  dict(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                                       max_position_embeddings=64, sinusoidal_pos_embds=True, activation="relu",
                                       tie_word_embeddings=False),
                                  token_types=False),
    "roformer": Case("RoFormerConfig", "RoFormer", HEADS, {**ENCODER, "embedding_size": 24}),
    "roformer-rotary-value": Case("RoFormerConfig", "RoFormer", ("Model",), {**ENCODER, "rotary_value": True}),
    # block_size 2, one random block: block-sparse from 15 tokens on; 16 tokens are 8 blocks
    "big_bird": Case("BigBirdConfig", "BigBird", HEADS + ("ForPreTraining",),
                     {**ENCODER, "block_size": 2, "num_random_blocks": 1, "sep_token_id": 5, "use_bias": False,
                      "rescale_embeddings": True}, seq_len=16, no_pooler=("ForMaskedLM", "ForTokenClassification")),
    "big_bird-full": Case("BigBirdConfig", "BigBird", ("Model", "ForCausalLM"),
                          {**ENCODER, "attention_type": "original_full"}, no_pooler=("ForCausalLM",)),
    "roberta-prelayernorm": Case("RobertaPreLayerNormConfig", "RobertaPreLayerNorm", HEADS + ("ForCausalLM",),
                                 {**ENCODER, "pad_token_id": 1}),
}

PAIRS = [(name, head) for name, case in CASES.items() for head in case.heads]


@dataclass
class Built:
    case: Case
    head: str
    path: str
    ref: Any  # transformers model, eager attention
    ours: Any
    inputs: dict[str, np.ndarray]


def _randomise(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            module = name.split(".")[-2].lower() if "." in name else ""
            if "norm" in module and name.endswith("weight"):  # LayerNorm, layer_norm, sa_layer_norm, ...
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))


def make_inputs(case: Case, head: str, pad_token_id: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Ids with the second row right-padded (pad ids under a zero mask) and two segments; [1, B, T] for
    multiple choice (B choices), so every head runs the encoder on [B, T]."""
    rng = np.random.RandomState(seed)
    t = case.seq_len
    ids = rng.randint(3, VOCAB, (B, t)).astype(np.int32)
    mask = np.ones((B, t), np.int32)
    mask[1, t - 2:] = 0
    ids[1, t - 2:] = pad_token_id
    inputs = {"input_ids": ids, "attention_mask": mask}
    if case.token_types:
        inputs["token_type_ids"] = (np.arange(t) >= t // 2).astype(np.int32)[None].repeat(B, 0)
    return {k: v[None] for k, v in inputs.items()} if head == "ForMultipleChoice" else inputs


def _torch(inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(np.asarray(v), dtype=torch.long) for k, v in inputs.items()}


_BUILT: dict[tuple[str, str], Built] = {}


def build(name: str, head: str, tmp_path_factory) -> Built:
    if (name, head) in _BUILT:
        return _BUILT[(name, head)]
    case = CASES[name]
    torch.manual_seed(0)
    config = getattr(transformers, case.config)(**{**case.kwargs, **HEAD_CONFIG.get(head, {})})
    ref_cls = getattr(transformers, case.torch_names.get(head, case.prefix + head))
    ref = ref_cls(config).eval()
    _randomise(ref, seed=len(head))
    path = str(tmp_path_factory.mktemp(f"{name}-{head}"))
    ref.save_pretrained(path)
    ref = ref_cls.from_pretrained(path, attn_implementation="eager").eval()
    ours = getattr(flaxformers, f"Flax{case.prefix}{head}").from_pretrained(path)
    assert not ours.loading_report.missing and not ours.loading_report.unexpected, ours.loading_report
    built = Built(case, head, path, ref, ours, make_inputs(case, head, config.pad_token_id))
    _BUILT[(name, head)] = built
    return built


@pytest.fixture(scope="module")
def built(request, tmp_path_factory) -> Built:
    return build(*request.param, tmp_path_factory)


def _per_pair(pairs: list) -> list:
    """A case's heads run on one xdist worker, so its models are built once."""
    return [pytest.param(p, marks=pytest.mark.xdist_group(f"encoders-{p[0]}"), id=f"{p[0]}-{p[1]}") for p in pairs]


every_head = pytest.mark.parametrize("built", _per_pair(PAIRS), indirect=True)
causal_heads = pytest.mark.parametrize("built", _per_pair([p for p in PAIRS if p[1] == "ForCausalLM"]), indirect=True)


def _fields(out) -> list[str]:
    return [k for k in out.keys() if k not in ("hidden_states", "attentions", "cross_attentions", "past_key_values")]


# --- parity ----------------------------------------------------------------------------------------
@every_head
def test_outputs_hidden_states_attentions_match(built):
    with torch.no_grad():
        expected = built.ref(**_torch(built.inputs), output_hidden_states=True, output_attentions=True)
    out = built.ours(**built.inputs, output_hidden_states=True, output_attentions=True)
    fields = _fields(out)
    assert fields, "no output fields"
    for name in fields:
        assert_close(out[name], expected[name], what=name)
    layers = built.ours.config.num_hidden_layers * getattr(built.ours.config, "inner_group_num", 1)
    assert len(out.hidden_states) == len(expected.hidden_states) == layers + 1
    for i, (a, b) in enumerate(zip(out.hidden_states, expected.hidden_states)):
        assert_close(a, b, what=f"hidden_states[{i}]")
    assert len(out.attentions) == len(expected.attentions) == layers
    for i, (a, b) in enumerate(zip(out.attentions, expected.attentions)):
        assert_close(a, b, what=f"attentions[{i}]")
    as_tuple = built.ours(**built.inputs, output_hidden_states=True, output_attentions=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(fields) + 2
    for i, name in enumerate(fields):
        np.testing.assert_array_equal(as_tuple[i], out[name])


def _labels(built: Built, task: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The head's labels: ours (training.losses' keys) and transformers' keywords."""
    ours = _our_labels(built, task)
    if task == "next-sentence-prediction":
        return ours, {"labels": ours["next_sentence_label"]}
    return ours, ours


def _our_labels(built: Built, task: str) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(5)
    ids = built.inputs["input_ids"]
    cfg = built.ours.config
    if task in ("masked-lm", "causal-lm", "pretraining", "sentence-order-pretraining"):
        labels = np.where(rng.rand(*ids.shape) < 0.5, ids, -100)
        extra = {"pretraining": {"next_sentence_label": np.array([0, 1])},
                 "sentence-order-pretraining": {"sentence_order_label": np.array([1, 0])}}.get(task, {})
        return {"labels": labels, **extra}
    if task == "replaced-token-detection":
        return {"labels": rng.randint(0, 2, ids.shape)}
    if task == "next-sentence-prediction":
        return {"next_sentence_label": np.array([1, 0])}
    if task == "sequence-classification":
        return {"labels": rng.randint(0, cfg.num_labels, (B,))}
    if task == "token-classification":
        return {"labels": rng.randint(0, cfg.num_labels, ids.shape)}
    if task == "multiple-choice":
        return {"labels": np.array([1])}
    if task == "question-answering":
        return {"start_positions": np.array([1, 3]), "end_positions": np.array([4, 5])}
    raise AssertionError(task)


def _remat_head(case: Case) -> str:
    """The head whose gradients are also taken with remat: remat wraps the shared layer stack, which every
    head of a case runs the same way, so one head per case checks it."""
    return next((h for h in case.heads if h != "Model"), case.heads[0])


@every_head
def test_loss_and_gradients_match_with_and_without_remat(built):
    """The head's loss (flaxformers.training.losses) and every gradient equal transformers' loss.backward()
    (with gradient checkpointing too, for one head per case)."""
    ours, ref = built.ours, built.ref
    task = None if built.head == "Model" else task_for_model(ours)
    labels, torch_labels = ({}, {}) if task is None else _labels(built, task)
    weights = np.random.RandomState(7).randn(B, built.case.seq_len, ours.config.hidden_size).astype(np.float32)

    def loss_fn(model):
        def loss(params):
            out = model(**built.inputs, params=params)
            if task is None:  # the base model: a random projection of its last hidden state
                return (out.last_hidden_state * weights).sum() / np.sqrt(weights.size)
            return get_task_loss(task)(out, {**built.inputs, **jax.tree_util.tree_map(jnp.asarray, labels)},
                                       model.config)
        return loss

    value, grads = jax.value_and_grad(loss_fn(ours))(ours.params)
    checks = [("plain", value, grads)]
    if built.head == _remat_head(built.case):
        remat = type(ours)(ours.config, _do_init=False, gradient_checkpointing=True)
        assert remat.module.gradient_checkpointing
        checks.append(("remat", *jax.value_and_grad(loss_fn(remat))(ours.params)))

    ref.zero_grad()
    out = ref(**_torch(built.inputs), **_torch(torch_labels))
    ref_loss = (out.last_hidden_state * torch.tensor(weights)).sum() / np.sqrt(weights.size) if task is None else out.loss
    ref_loss.backward()
    fixed = set(ours.constant_tensors())  # tables we compute (sinusoids), not params
    # A tied weight is named by whichever module torch meets first; ours is the embedding's name.
    tied = ours._tied_weights_keys if ours.config.tie_word_embeddings else {}
    expected = {tied.get(n, n): p.grad for n, p in ref.named_parameters() if p.grad is not None and n not in fixed}
    assert max(float(g.abs().max()) for g in expected.values()) > 0.01  # 100x the bound: 1e-4 binds
    rules = ours._conversion_rules(ours.config)
    for what, v, g in checks:
        assert_close(v, ref_loss.detach(), what=f"{what} loss")
        ours_grads = flax_to_state_dict(flatten(g), rules)
        assert set(expected) <= set(ours_grads), set(expected) - set(ours_grads)
        worst = max(max_abs_diff(ours_grads[n], e) for n, e in expected.items())
        assert_close(worst, 0.0, what=f"{what} gradients")


# --- checkpoints -----------------------------------------------------------------------------------
@every_head
def test_save_then_load_in_transformers(built, tmp_path):
    built.ours.save_pretrained(tmp_path)
    ref_cls = type(built.ref)
    reloaded, info = ref_cls.from_pretrained(tmp_path, output_loading_info=True, attn_implementation="eager")
    pooler = {f"{reloaded.base_model_prefix}.pooler.{p}" for p in ("weight", "bias")}
    assert info["missing_keys"] == (pooler if built.head in built.case.no_pooler else set()), info
    assert not info["unexpected_keys"] and not info["mismatched_keys"], info
    with torch.no_grad():
        expected = reloaded.eval()(**_torch(built.inputs))
    out = built.ours(**built.inputs)
    for name in _fields(out):
        assert_close(out[name], expected[name], what=f"transformers reload {name}")


@every_head
def test_msgpack_round_trip(built, tmp_path):
    built.ours.save_pretrained(tmp_path, safe_serialization=False)
    assert io.FLAX_WEIGHTS_NAME in os.listdir(tmp_path) and io.SAFE_WEIGHTS_NAME not in os.listdir(tmp_path)
    again = type(built.ours).from_pretrained(tmp_path)
    assert not again.loading_report.missing and not again.loading_report.unexpected
    for path, value in flatten(built.ours.params).items():
        np.testing.assert_array_equal(flatten(again.params)[path], value)


# --- decoding --------------------------------------------------------------------------------------
@causal_heads
def test_cached_decoding_equals_full_forward(built):
    ours, ids = built.ours, built.inputs["input_ids"][:1].repeat(B, 0)
    t = ids.shape[1]
    positions = np.broadcast_to(np.arange(t), ids.shape)
    full = np.asarray(ours(ids, position_ids=positions).logits)
    cache = ours.init_cache(B, t)
    mask = np.ones((B, t), np.int32)

    @jax.jit  # one compile per chunk length instead of one per op and shape
    def step(params, cache, ids, positions):
        out = ours(ids, attention_mask=mask, position_ids=positions, params=params, past_key_values=cache)
        return out.logits, out.past_key_values

    steps = []
    for start in range(0, t, t // 2):
        logits, cache = step(ours.params, cache, ids[:, start:start + t // 2], positions[:, start:start + t // 2])
        steps.append(np.asarray(logits))
    assert_close(np.concatenate(steps, axis=1), full, what="cached vs full")
    assert {int(v) for k, v in flatten(cache).items() if k[-1] == "cache_index"} == {t}


# Beam search compiles the most; one family runs it (the engine is shared), every causal head runs greedy.
@pytest.mark.parametrize("built, num_beams", [
    pytest.param(p, beams, marks=pytest.mark.xdist_group(f"encoders-{p[0]}"), id=f"{p[0]}-{p[1]}-{beams}")
    for p in PAIRS if p[1] == "ForCausalLM" and p[0] != "xlm-roberta"  # XLM-R's modules are RoBERTa's
    for beams in ((1, 3) if p[0] == "bert" else (1,))
], indirect=["built"])
def test_generate_equals_transformers(built, num_beams):
    """A left-padded batch in one `generate` call equals transformers on each row alone."""
    rng = np.random.RandomState(21)
    rows = [rng.randint(3, VOCAB, n) for n in (6, 3)]
    pad = built.ours.config.pad_token_id
    ids = np.full((2, 6), pad, np.int32)
    mask = np.zeros((2, 6), np.int32)
    for i, row in enumerate(rows):
        ids[i, 6 - len(row):], mask[i, 6 - len(row):] = row, 1
    settings = dict(max_new_tokens=5, do_sample=False, num_beams=num_beams, pad_token_id=pad)
    out = np.asarray(built.ours.generate(ids, attention_mask=mask, **settings).sequences)
    for i, row in enumerate(rows):
        with torch.no_grad():
            expected = built.ref.generate(torch.tensor(row[None], dtype=torch.long), eos_token_id=None,
                                          attention_mask=torch.ones((1, len(row)), dtype=torch.long), **settings)
        np.testing.assert_array_equal(out[i, 6 - len(row):], expected[0].numpy(), err_msg=f"row {i}")


@pytest.mark.parametrize("built", _per_pair([p for p in PAIRS if p[1] == "Model"]), indirect=True)
def test_init_cache_needs_decoder(built):
    with pytest.raises(ValueError, match="is_decoder=True"):
        built.ours.init_cache(1, 4)

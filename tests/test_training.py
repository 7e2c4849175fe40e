"""Training: every head's loss against transformers' PyTorch losses, the optax train step
(accumulation, clipping, bf16, dropout), remat and scan-over-layers for all four families."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import transformers
from _helpers import assert_close
from transformers.loss import loss_utils

import flaxformers as ff
from flaxformers.checkpoints.convert import flatten
from flaxformers.nn.stack import stack_layer_params, unstack_layer_params
from flaxformers.training import (
    TASKS,
    TrainState,
    causal_lm_loss,
    make_train_step,
    masked_lm_loss,
    multiple_choice_loss,
    next_sentence_loss,
    pretraining_loss,
    question_answering_loss,
    sequence_classification_loss,
    task_for_model,
    token_classification_loss,
)

RNG = np.random.RandomState(0)
B, T, V = 3, 7, 11


def _t(x):
    return torch.tensor(np.asarray(x))


def _logits(*shape):
    return RNG.randn(*shape).astype(np.float32) * 3


def _labels(high, *shape, ignored=0.3):
    labels = RNG.randint(0, high, shape)
    labels[RNG.rand(*shape) < ignored] = -100
    return labels


# --- losses equal transformers' ----------------------------------------------------------------------
def test_token_losses_match_transformers():
    logits, labels = _logits(B, T, V), _labels(V, B, T)
    expected = loss_utils.ForCausalLMLoss(_t(logits), _t(labels), vocab_size=V)
    assert_close(causal_lm_loss(logits, labels), expected, what="causal LM (shifted, -100 ignored)")
    expected = loss_utils.ForCausalLMLoss(_t(logits), _t(labels), vocab_size=V, num_items_in_batch=torch.tensor(9))
    assert_close(causal_lm_loss(logits, labels, num_items_in_batch=9), expected, what="causal LM num_items")
    assert_close(masked_lm_loss(logits, labels), loss_utils.ForMaskedLMLoss(_t(logits), _t(labels), vocab_size=V),
                 what="masked LM")
    config = types.SimpleNamespace(num_labels=V)
    assert_close(token_classification_loss(logits, labels),
                 loss_utils.ForTokenClassification(_t(logits), _t(labels), config), what="token classification")
    batch = {"labels": labels}
    out = types.SimpleNamespace(logits=logits)
    assert_close(TASKS["causal-lm"](out, batch), loss_utils.ForCausalLMLoss(_t(logits), _t(labels), vocab_size=V),
                 what="causal-lm task")
    assert_close(TASKS["token-classification"](out, batch), loss_utils.ForTokenClassification(
        _t(logits), _t(labels), config), what="token-classification task")


@pytest.mark.parametrize("problem_type,num_labels", [
    (None, 1), ("regression", 3), (None, 4), ("single_label_classification", 4), ("multi_label_classification", 4),
])
def test_sequence_classification_losses_match_transformers(problem_type, num_labels):
    logits = _logits(B, num_labels)
    if problem_type == "multi_label_classification":
        labels = (RNG.rand(B, num_labels) > 0.5).astype(np.float32)
    elif num_labels == 1 or problem_type == "regression":
        labels = RNG.randn(B, num_labels).astype(np.float32).squeeze(-1 if num_labels == 1 else ())
    else:
        labels = RNG.randint(0, num_labels, (B,))
    config = types.SimpleNamespace(num_labels=num_labels, problem_type=problem_type)
    expected = loss_utils.ForSequenceClassificationLoss(_t(labels), _t(logits), config)
    ours = sequence_classification_loss(logits, labels, problem_type)
    assert_close(ours, expected, what=f"sequence classification {config.problem_type}")
    config.problem_type = problem_type
    task = TASKS["sequence-classification"](types.SimpleNamespace(logits=logits), {"labels": labels}, config)
    assert_close(task, expected, what="sequence-classification task")


def test_span_choice_and_pretraining_losses_match_transformers():
    start, end = _logits(B, T), _logits(B, T)
    start_pos, end_pos = np.array([1, T + 5, 3]), np.array([[2], [4], [-1]])  # out of range: clamped and ignored
    expected = loss_utils.ForQuestionAnsweringLoss(_t(start), _t(end), _t(start_pos), _t(end_pos))
    assert_close(question_answering_loss(start, end, start_pos, end_pos), expected, what="QA spans")
    batch = {"input_ids": np.zeros((B, T), np.int32), "start_positions": start_pos, "end_positions": end_pos}
    task = TASKS["question-answering"](types.SimpleNamespace(start_logits=start, end_logits=end), batch)
    assert_close(task, expected, what="question-answering task")

    ce = torch.nn.CrossEntropyLoss()  # what BertForMultipleChoice / NSP / PreTraining use
    choices, answer = _logits(B, 4), np.array([0, 3, 1])
    assert_close(multiple_choice_loss(choices, answer), ce(_t(choices), _t(answer)), what="multiple choice")
    nsp, nsl = _logits(B, 2), np.array([0, 1, 1])
    assert_close(next_sentence_loss(nsp, nsl), ce(_t(nsp), _t(nsl)), what="next sentence")
    mlm, labels = _logits(B, T, V), _labels(V, B, T)
    expected = ce(_t(mlm).view(-1, V), _t(labels).view(-1)) + ce(_t(nsp), _t(nsl))
    assert_close(pretraining_loss(mlm, nsp, labels, nsl), expected, what="pretraining")
    out = types.SimpleNamespace(prediction_logits=mlm, seq_relationship_logits=nsp)
    assert_close(TASKS["pretraining"](out, {"labels": labels, "next_sentence_label": nsl}), expected,
                 what="pretraining task")


def test_task_follows_the_head_and_bad_task_is_clear():
    assert task_for_model(ff.FlaxGPT2LMHeadModel.__new__(ff.FlaxGPT2LMHeadModel)) == "causal-lm"
    assert task_for_model(ff.FlaxBertForMultipleChoice.__new__(ff.FlaxBertForMultipleChoice)) == "multiple-choice"
    with pytest.raises(ValueError, match="has no head with a loss"):
        task_for_model(ff.FlaxGPT2Model.__new__(ff.FlaxGPT2Model))
    with pytest.raises(ValueError, match="task='lm' is not one of"):
        make_train_step(ff.FlaxGPT2Model.__new__(ff.FlaxGPT2Model), optax.sgd(1.0), task="lm")


# --- the train step -----------------------------------------------------------------------------------
GPT2_TINY = dict(vocab_size=97, n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    torch.manual_seed(0)
    ref = transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2_TINY)).eval()
    ref.config._attn_implementation = "eager"
    path = tmp_path_factory.mktemp("gpt2")
    ref.save_pretrained(path)
    return ref, str(path), ff.FlaxGPT2LMHeadModel.from_pretrained(path)


def _lm_batch(batch=4, seq=9, seed=1):
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, GPT2_TINY["vocab_size"], (batch, seq)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, -3:] = 0  # right padding, not scored
    labels = np.where(mask > 0, ids, -100)
    labels[2, :4] = -100  # a prompt that is not scored
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _sgd_grads(state_before, state_after):
    """With SGD at learning rate 1 the update is minus the (clipped) gradient."""
    return jax.tree_util.tree_map(lambda a, b: np.asarray(a) - np.asarray(b), state_before.params, state_after.params)


@pytest.fixture(scope="module")
def plain_step(gpt2):
    """One step of SGD (lr 1, so the update is minus the gradient) with dropout off, as the eval-mode reference."""
    _, _, model = gpt2
    config = ff.GPT2Config(**GPT2_TINY, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    no_dropout = ff.FlaxGPT2LMHeadModel(config, _do_init=False)
    state = TrainState.create(model.params, optax.sgd(1.0))
    after, metrics = make_train_step(no_dropout, optax.sgd(1.0), donate=False)(state, _lm_batch())
    return no_dropout, state, _sgd_grads(state, after), metrics


def test_train_step_loss_and_gradients_equal_transformers(gpt2, plain_step):
    ref, _, _ = gpt2
    _, _, grads, metrics = plain_step
    batch = _lm_batch()
    ref.zero_grad()
    out = ref(_t(batch["input_ids"]).long(), attention_mask=_t(batch["attention_mask"]).long(),
              labels=_t(batch["labels"]).long())
    out.loss.backward()
    assert_close(metrics["loss"], out.loss, what="train-step loss vs GPT2LMHeadModel(labels=)")
    assert_close(grads["transformer"]["wte"]["embedding"], ref.transformer.wte.weight.grad, atol=1e-5,
                 what="gradient of wte")
    assert_close(grads["transformer"]["h"]["1"]["mlp"]["c_fc"]["kernel"], ref.transformer.h[1].mlp.c_fc.weight.grad.T,
                 atol=1e-5, what="gradient of h.1.mlp.c_fc")
    norm = np.sqrt(sum(float((p.grad ** 2).sum()) for p in ref.parameters() if p.grad is not None))
    assert_close(metrics["grad_norm"], norm, atol=1e-4, what="grad_norm")


def test_gradient_accumulation_and_clipping(plain_step):
    model, state, grads, metrics = plain_step
    norm = float(metrics["grad_norm"])
    # Two micro-batches (with different token counts), clipped to a tenth of the norm: the full-batch
    # gradient, scaled by 1/10.
    step = make_train_step(model, optax.sgd(1.0), grad_accum_steps=2, max_grad_norm=norm / 10, donate=False)
    after, accumulated = step(state, _lm_batch())
    assert_close(accumulated["loss"], metrics["loss"], atol=1e-6, what="accumulated loss")
    assert_close(accumulated["grad_norm"], norm, atol=1e-5, what="accumulated grad_norm (before clipping)")
    for path, g in flatten(_sgd_grads(state, after)).items():
        assert_close(g, flatten(grads)[path] / 10, atol=1e-6, what="accumulated, clipped gradient " + "/".join(path))


def test_bf16_compute_keeps_fp32_master_weights_and_dropout_follows_the_seed(gpt2, plain_step):
    _, _, model = gpt2  # dropout 0.1 in train mode
    _, _, _, reference = plain_step
    sgd = optax.sgd(0.1)
    step = make_train_step(model, sgd, compute_dtype=jnp.bfloat16, donate=False)
    state = TrainState.create(model.params, sgd, seed=3)
    a, m1 = step(state, _lm_batch())
    b, m2 = step(state, _lm_batch())
    _, m3 = step(TrainState.create(model.params, sgd, seed=4), _lm_batch())
    assert float(m1["loss"]) == float(m2["loss"]), "the dropout RNG lives in the state: a step is reproducible"
    assert float(m3["loss"]) != float(m1["loss"]), "another seed draws other dropout masks"
    assert float(m1["loss"]) != float(reference["loss"]), "dropout is on in the train step"
    assert_close(m1["loss"], reference["loss"], atol=0.05, what="bf16 + dropout loss near the fp32 eval loss")
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(a.params)), "master weights stay fp32"
    assert int(a.step) == 1 and int(b.rng[0]) == int(a.rng[0])


# --- remat and scan: outputs and gradients equal, for every family -----------------------------------
FAMILIES = {
    "gpt2": (ff.GPT2Config, ff.FlaxGPT2LMHeadModel, GPT2_TINY),
    # Gemma 2 alternates sliding and full layers: scanned in groups of 2, the odd last layer unrolled.
    "gemma2": (ff.Gemma2Config, ff.FlaxGemma2ForCausalLM,
               dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=8, sliding_window=4, max_position_embeddings=32)),
    "bloom": (ff.BloomConfig, ff.FlaxBloomForCausalLM, dict(vocab_size=64, hidden_size=32, n_layer=2, n_head=4)),
    "bert": (ff.BertConfig, ff.FlaxBertForSequenceClassification,
             dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  max_position_embeddings=32)),
}


def _loss_and_grads(model, params, ids):
    def loss(p):
        logits = model(ids, params=p).logits
        return jnp.mean(logits.astype(jnp.float32) ** 2), logits

    return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_remat_and_scan_keep_outputs_and_gradients(family):
    config_cls, model_cls, kwargs = FAMILIES[family]
    plain = model_cls(config_cls(**kwargs), _do_init=False)
    rng = np.random.RandomState(5)  # random params straight from the shapes: no init to compile
    params = jax.tree_util.tree_map(lambda s: rng.normal(0, 0.2, s.shape).astype(np.float32), plain.params_shape_tree)
    ids = rng.randint(1, 60, (2, 9)).astype(np.int32)
    (_, logits), grads = _loss_and_grads(plain, params, ids)
    variants = {"remat": {}, "scan": dict(scan_layers=True)} if family == "gpt2" else {"scan+remat": dict(scan_layers=True)}
    for name, extra in variants.items():
        other = model_cls(config_cls(**kwargs), _do_init=False, **extra)
        if "remat" in name:
            other.enable_gradient_checkpointing("dots_with_no_batch_dims_saveable")
        other_params = stack_layer_params(params, other.params_shape_tree) if "scan" in name else params
        (_, other_logits), other_grads = _loss_and_grads(other, other_params, ids)
        assert_close(other_logits, logits, atol=1e-5, what=f"{family} {name} logits")
        flat = flatten(unstack_layer_params(other_grads))
        assert flat.keys() == flatten(grads).keys()
        for path, g in flatten(grads).items():
            assert_close(flat[path], g, atol=1e-5, what=f"{family} {name} grad {'/'.join(path)}")


def test_scan_layers_loads_and_saves_the_per_layer_checkpoint(gpt2, tmp_path):
    ref, path, _ = gpt2
    model = ff.FlaxGPT2LMHeadModel.from_pretrained(path, scan_layers=True)
    stacked = model.params["transformer"]["h"]["scanned"]["0"]["attn"]["c_attn"]["kernel"]
    assert stacked.shape == (2, 96, 32)  # [layers, out, in]
    ids = _lm_batch()["input_ids"]
    with torch.no_grad():
        expected = ref(_t(ids).long()).logits
    assert_close(model(ids).logits, expected, what="scanned logits vs transformers")
    model.save_pretrained(tmp_path)
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    for name, tensor in ref.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    # The layout choice is a config key: transformers ignores it, flaxformers reloads scanned.
    assert ff.GPT2Config.from_pretrained(tmp_path).scan_layers is True
    assert "scan_layers" not in open(f"{path}/config.json").read()

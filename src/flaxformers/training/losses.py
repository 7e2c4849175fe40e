"""Losses for every head, equal to transformers' PyTorch losses on the same inputs.

Each loss is a sum of terms `weight * sum / count`, where `count` depends on the labels only
(the tokens or rows the term averages over). The public functions return the torch value; the
`TASKS` table gives the train step the terms, so gradient accumulation can divide by the count
of the whole batch and equal one big batch exactly (transformers' `num_items_in_batch`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

IGNORE_INDEX = -100
Term = tuple[jax.Array, jax.Array]  # (sum of per-item losses, number of items)
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


# --- primitives: (sum, count) ----------------------------------------------------------------------
def cross_entropy_terms(logits: jax.Array, labels: jax.Array, ignore_index: int = IGNORE_INDEX) -> Term:
    """Summed negative log-likelihood of `labels` [...] under `logits` [..., C], skipping `ignore_index`."""
    logits = logits.astype(jnp.float32).reshape(-1, logits.shape[-1])  # [N, C]
    labels = labels.reshape(-1)  # [N]
    valid = labels != ignore_index
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_probs, jnp.where(valid, labels, 0)[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return -jnp.sum(jnp.where(valid, picked, 0.0)), jnp.sum(valid).astype(jnp.float32)


def _mean(term: Term, num_items_in_batch: Any = None) -> jax.Array:
    total, count = term
    return total / (count if num_items_in_batch is None else num_items_in_batch)


def _shift_left(labels: jax.Array, ignore_index: int) -> jax.Array:
    """Position t is scored on token t + 1; the last position has no target."""
    pad = jnp.full(labels.shape[:-1] + (1,), ignore_index, dtype=labels.dtype)
    return jnp.concatenate([labels[..., 1:], pad], axis=-1)


# --- the losses --------------------------------------------------------------------------------------
def causal_lm_loss(logits: jax.Array, labels: jax.Array, ignore_index: int = IGNORE_INDEX,
                   num_items_in_batch: Any = None, shift_labels: jax.Array | None = None) -> jax.Array:
    """`ForCausalLMLoss`: logits [B, T, V] at t predict labels [B, T] at t + 1."""
    targets = _shift_left(labels, ignore_index) if shift_labels is None else shift_labels
    return _mean(cross_entropy_terms(logits, targets, ignore_index), num_items_in_batch)


def masked_lm_loss(logits: jax.Array, labels: jax.Array, ignore_index: int = IGNORE_INDEX,
                   num_items_in_batch: Any = None) -> jax.Array:
    """`ForMaskedLMLoss`: cross-entropy at every position whose label is not `ignore_index`."""
    return _mean(cross_entropy_terms(logits, labels, ignore_index), num_items_in_batch)


def next_sentence_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """BertForNextSentencePrediction: logits [B, 2], labels [B] (0: B follows A)."""
    return _mean(cross_entropy_terms(logits, labels))


def pretraining_loss(prediction_logits: jax.Array, seq_relationship_logits: jax.Array, labels: jax.Array,
                     next_sentence_label: jax.Array) -> jax.Array:
    """BertForPreTraining: masked LM plus next-sentence prediction."""
    return masked_lm_loss(prediction_logits, labels) + next_sentence_loss(seq_relationship_logits, next_sentence_label)


def ctc_loss(logits: jax.Array, frame_mask: jax.Array, labels: jax.Array, blank_id: int, reduction: str = "sum",
             zero_infinity: bool = False) -> jax.Array:
    """Connectionist temporal classification loss of per-frame `logits` [B, T, V] (real frames: `frame_mask`
    [B, T]) against `labels` [B, N] (negative ids are padding), as PyTorch's `ctc_loss`: "sum" over rows, or
    "mean" of each row's loss over its label count; `zero_infinity` zeroes impossible alignments."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction={reduction!r} must be 'sum' or 'mean'.")
    valid = labels >= 0
    per_row = optax.ctc_loss(logits.astype(jnp.float32), 1.0 - frame_mask.astype(jnp.float32),
                             jnp.where(valid, labels, 0), 1.0 - valid.astype(jnp.float32), blank_id=blank_id)  # [B]
    # an alignment needs a frame per label plus a blank between repeated labels; optax gives a large finite
    # loss where there is none, PyTorch inf (or 0 with zero_infinity)
    repeats = jnp.sum(valid[:, 1:] & (labels[:, 1:] == labels[:, :-1]), axis=-1)
    impossible = jnp.sum(frame_mask, axis=-1) < jnp.sum(valid, axis=-1) + repeats
    per_row = jnp.where(impossible, 0.0 if zero_infinity else jnp.inf, per_row)
    if reduction == "sum":
        return jnp.sum(per_row)
    return jnp.mean(per_row / jnp.maximum(jnp.sum(valid, axis=-1), 1))


def resolve_problem_type(num_labels: int, labels: Any, problem_type: str | None = None) -> str:
    """transformers' rule: one label is regression, integer labels single-label, else multi-label."""
    if problem_type is not None:
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type={problem_type!r} is not one of {PROBLEM_TYPES}.")
        return problem_type
    if num_labels == 1:
        return "regression"
    return "single_label_classification" if jnp.issubdtype(labels.dtype, jnp.integer) else "multi_label_classification"


def sequence_classification_terms(logits: jax.Array, labels: jax.Array, problem_type: str) -> Term:
    num_labels = logits.shape[-1]
    if problem_type == "regression":
        if num_labels == 1:  # torch squeezes both sides
            logits, labels = logits.reshape(-1), labels.reshape(-1)
        err = logits.astype(jnp.float32) - labels.astype(jnp.float32)
        return jnp.sum(err * err), jnp.asarray(err.size, jnp.float32)
    if problem_type == "single_label_classification":
        return cross_entropy_terms(logits, labels)
    x, y = logits.astype(jnp.float32), labels.astype(jnp.float32)  # BCEWithLogits, stable form
    per_item = jnp.maximum(x, 0.0) - x * y + jnp.log1p(jnp.exp(-jnp.abs(x)))
    return jnp.sum(per_item), jnp.asarray(per_item.size, jnp.float32)


def sequence_classification_loss(logits: jax.Array, labels: jax.Array, problem_type: str | None = None) -> jax.Array:
    """`ForSequenceClassificationLoss`: MSE, cross-entropy or BCE-with-logits by `problem_type`."""
    kind = resolve_problem_type(logits.shape[-1], labels, problem_type)
    return _mean(sequence_classification_terms(logits, labels, kind))


def token_classification_loss(logits: jax.Array, labels: jax.Array, ignore_index: int = IGNORE_INDEX,
                              num_items_in_batch: Any = None) -> jax.Array:
    """`ForTokenClassification`: logits [B, T, C], labels [B, T] with `ignore_index` on sub-words/padding."""
    return _mean(cross_entropy_terms(logits, labels, ignore_index), num_items_in_batch)


def multiple_choice_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """BertForMultipleChoice: logits [B, C] (one score per choice), labels [B]."""
    return _mean(cross_entropy_terms(logits.reshape(labels.shape[0], -1), labels))


def _span_terms(logits: jax.Array, positions: jax.Array) -> Term:
    positions = positions.reshape(positions.shape[0], -1)[:, 0]  # [B]; torch squeezes a trailing axis
    ignored = logits.shape[1]  # positions outside the input are clamped here and skipped
    return cross_entropy_terms(logits, jnp.clip(positions, 0, ignored), ignore_index=ignored)


def question_answering_loss(start_logits: jax.Array, end_logits: jax.Array, start_positions: jax.Array,
                            end_positions: jax.Array) -> jax.Array:
    """`ForQuestionAnsweringLoss`: mean of the start and end cross-entropies over [B, T] logits."""
    return (_mean(_span_terms(start_logits, start_positions)) + _mean(_span_terms(end_logits, end_positions))) / 2


# --- tasks: what the train step needs -----------------------------------------------------------------
@dataclass(frozen=True)
class LossTerm:
    """`weight * sum / count` over one output field. `count` reads the targets only, so a train
    step can count a whole batch before it sums over micro-batches."""

    weight: float
    field: str  # the output that holds the logits
    targets: jax.Array  # labels as scored: shifted, clamped, ...
    kind: str = "ce"  # "ce" | "mse" | "bce" | "token_bce" (per-token BCE skipping `ignore_index`)
    ignore_index: int = IGNORE_INDEX

    def count(self) -> jax.Array:
        if self.kind in ("ce", "token_bce"):
            return jnp.sum(self.targets != self.ignore_index).astype(jnp.float32)
        return jnp.asarray(self.targets.size, jnp.float32)

    def total(self, outputs: Any) -> jax.Array:
        logits = getattr(outputs, self.field)
        if self.kind == "ce":
            return cross_entropy_terms(logits.reshape(-1, logits.shape[-1]), self.targets, self.ignore_index)[0]
        if self.kind == "token_bce":
            valid = self.targets != self.ignore_index
            x, y = logits.astype(jnp.float32), jnp.where(valid, self.targets, 0).astype(jnp.float32)
            per_item = jnp.maximum(x, 0.0) - x * y + jnp.log1p(jnp.exp(-jnp.abs(x)))
            return jnp.sum(jnp.where(valid, per_item, 0.0))
        problem = "regression" if self.kind == "mse" else "multi_label_classification"
        return sequence_classification_terms(logits.reshape(self.targets.shape), self.targets, problem)[0]


@dataclass(frozen=True)
class TaskLoss:
    """A head's loss: which batch keys are labels, the terms for a batch, and the model inputs the
    labels imply (`model_inputs(model, batch, inputs) -> inputs`: an encoder-decoder's decoder inputs)."""

    label_keys: tuple[str, ...]
    terms: Callable[[dict[str, jax.Array], Any], list[LossTerm]]
    model_inputs: Callable[[Any, dict[str, jax.Array], dict[str, jax.Array]], dict[str, jax.Array]] | None = None

    def __call__(self, outputs: Any, batch: dict[str, jax.Array], config: Any = None) -> jax.Array:
        """The loss as transformers computes it for this batch."""
        return sum(t.weight * t.total(outputs) / t.count() for t in self.terms(batch, config))


def _seq_cls_terms(batch, config):
    labels = batch["labels"]
    num_labels = getattr(config, "num_labels", 2 if labels.ndim == 1 else labels.shape[-1])
    problem = resolve_problem_type(num_labels, labels, getattr(config, "problem_type", None))
    if problem == "single_label_classification":
        return [LossTerm(1.0, "logits", labels.reshape(-1))]
    if problem == "regression" and num_labels == 1:
        labels = labels.reshape(-1, 1)  # torch squeezes logits [B, 1] and labels [B] alike
    return [LossTerm(1.0, "logits", labels, "mse" if problem == "regression" else "bce")]


def _span_term(field: str, positions: jax.Array, seq_len: int) -> LossTerm:
    positions = positions.reshape(positions.shape[0], -1)[:, 0]
    return LossTerm(0.5, field, jnp.clip(positions, 0, seq_len), ignore_index=seq_len)


def _decoder_inputs_from_labels(model: Any, batch: dict[str, jax.Array], inputs: dict[str, jax.Array]) -> dict:
    """Teacher forcing as transformers does it: without `decoder_input_ids`, the labels shifted right
    (after the decoder start token, -100 read as padding)."""
    if "decoder_input_ids" in inputs:
        return inputs
    return {**inputs, "decoder_input_ids": model.prepare_decoder_input_ids_from_labels(batch["labels"])}


def _replaced_token_terms(batch, config):
    """Replaced-token detection: BCE of each token's logit [B, T] against labels (1: replaced) over the
    tokens the attention mask keeps."""
    labels = batch["labels"]
    mask = batch.get("attention_mask")
    if mask is not None:
        labels = jnp.where(mask.reshape(labels.shape) == 1, labels, IGNORE_INDEX)
    return [LossTerm(1.0, "logits", labels, "token_bce")]


TASKS: dict[str, TaskLoss] = {
    "causal-lm": TaskLoss(("labels",), lambda b, c: [LossTerm(1.0, "logits", _shift_left(b["labels"], IGNORE_INDEX))]),
    "masked-lm": TaskLoss(("labels",), lambda b, c: [LossTerm(1.0, "logits", b["labels"])]),
    # encoder-decoders: the decoder at t predicts labels at t (its inputs are the labels shifted right)
    "seq2seq-lm": TaskLoss(("labels",), lambda b, c: [LossTerm(1.0, "logits", b["labels"])],
                           model_inputs=_decoder_inputs_from_labels),
    "next-sentence-prediction": TaskLoss(
        ("next_sentence_label",), lambda b, c: [LossTerm(1.0, "logits", b["next_sentence_label"].reshape(-1))]
    ),
    "pretraining": TaskLoss(("labels", "next_sentence_label"), lambda b, c: [
        LossTerm(1.0, "prediction_logits", b["labels"]),
        LossTerm(1.0, "seq_relationship_logits", b["next_sentence_label"].reshape(-1)),
    ]),
    # Masked LM plus sentence-order prediction on `sop_logits` [B, 2].
    "sentence-order-pretraining": TaskLoss(("labels", "sentence_order_label"), lambda b, c: [
        LossTerm(1.0, "prediction_logits", b["labels"]),
        LossTerm(1.0, "sop_logits", b["sentence_order_label"].reshape(-1)),
    ]),
    "replaced-token-detection": TaskLoss(("labels",), _replaced_token_terms),
    "sequence-classification": TaskLoss(("labels",), _seq_cls_terms),
    "token-classification": TaskLoss(("labels",), lambda b, c: [LossTerm(1.0, "logits", b["labels"])]),
    "multiple-choice": TaskLoss(("labels",), lambda b, c: [LossTerm(1.0, "logits", b["labels"].reshape(-1))]),
    "question-answering": TaskLoss(("start_positions", "end_positions"), lambda b, c: [
        _span_term("start_logits", b["start_positions"], b["input_ids"].shape[-1]),
        _span_term("end_logits", b["end_positions"], b["input_ids"].shape[-1]),
    ]),
}

# Model class name suffix -> task, so the train step can pick the loss from the model.
_TASK_BY_CLASS_SUFFIX = (
    ("ForConditionalGeneration", "seq2seq-lm"),
    ("MTModel", "seq2seq-lm"),
    ("LMHeadModel", "causal-lm"),
    ("ForCausalLM", "causal-lm"),
    ("ForMaskedLM", "masked-lm"),
    ("ForPreTraining", "pretraining"),
    ("ForNextSentencePrediction", "next-sentence-prediction"),
    ("ForSequenceClassification", "sequence-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForMultipleChoice", "multiple-choice"),
    ("ForQuestionAnswering", "question-answering"),
)


def task_for_model(model: Any) -> str:
    """The task of a model's head: its class's `loss_task` when it declares one (a pre-training head with its
    own objective), else from its class name (FlaxBertForMaskedLM -> 'masked-lm')."""
    declared = getattr(type(model), "loss_task", None)
    if declared is not None:
        return declared
    name = type(model).__name__
    for suffix, task in _TASK_BY_CLASS_SUFFIX:
        if name.endswith(suffix):
            return task
    raise ValueError(
        f"{name} has no head with a loss. Pass task= (one of {sorted(TASKS)}) or loss_fn=, "
        "or load a model with a head (e.g. FlaxGPT2LMHeadModel)."
    )


def get_task_loss(task: str) -> TaskLoss:
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"task={task!r} is not one of {sorted(TASKS)}.") from None

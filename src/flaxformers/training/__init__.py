"""Training and scale-out: losses for every head, an optax train step, sharding rules and checkpoints."""

from flaxformers.training.losses import (
    TASKS,
    LossTerm,
    TaskLoss,
    causal_lm_loss,
    cross_entropy_terms,
    get_task_loss,
    masked_lm_loss,
    multiple_choice_loss,
    next_sentence_loss,
    pretraining_loss,
    question_answering_loss,
    sequence_classification_loss,
    task_for_model,
    token_classification_loss,
)
from flaxformers.training.sharding import (
    PARTITION_RULES,
    batch_sharding,
    make_mesh,
    partition_rules,
    shard_batch,
    shard_params,
    spec_for,
    tree_shardings,
)
from flaxformers.training.train_step import (
    TrainState,
    cast_floating,
    make_eval_step,
    make_train_step,
    shard_train_state,
)

__all__ = [
    "PARTITION_RULES", "TASKS", "LossTerm", "TaskLoss", "TrainState", "batch_sharding", "cast_floating",
    "causal_lm_loss", "cross_entropy_terms", "get_task_loss", "make_eval_step", "make_mesh", "make_train_step",
    "masked_lm_loss", "multiple_choice_loss", "next_sentence_loss", "partition_rules", "pretraining_loss",
    "question_answering_loss", "sequence_classification_loss", "shard_batch", "shard_params", "shard_train_state",
    "spec_for", "task_for_model", "token_classification_loss", "tree_shardings",
]

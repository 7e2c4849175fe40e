"""An optax train step for any flaxformers model: dropout RNG, gradient accumulation, clipping,
mixed precision (bf16 compute over fp32 master weights) and metrics, on one device or a mesh.

    state = TrainState.create(model.params, optax.adamw(1e-4), seed=0)
    step = make_train_step(model, optax.adamw(1e-4), grad_accum_steps=2, max_grad_norm=1.0)
    state, metrics = step(state, batch)  # batch: model inputs + labels, [B, ...] numpy or jax arrays
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from flaxformers.training.losses import TaskLoss, get_task_loss, task_for_model
from flaxformers.training.sharding import Rules, batch_sharding, partition_rules, tree_shardings

Batch = dict[str, Any]


@flax.struct.dataclass
class TrainState:
    """Everything a resumed run needs: the step, fp32 master params, optimizer state and the RNG."""

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array

    @classmethod
    def create(cls, params: Any, optimizer: optax.GradientTransformation, seed: int | jax.Array = 0,
               copy: bool = True) -> TrainState:
        """`copy=False` hands `params` over: the train step donates the state, so they are consumed."""
        rng = jax.random.PRNGKey(seed) if isinstance(seed, int) else seed
        if copy:
            params = jax.tree_util.tree_map(jnp.copy, params)
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params), rng=rng)


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Floating leaves to `dtype`; integer leaves untouched."""
    return jax.tree_util.tree_map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _resolve_loss(model: Any, task: str | None, loss_fn: TaskLoss | None) -> TaskLoss:
    if loss_fn is not None:
        if not isinstance(loss_fn, TaskLoss):
            raise TypeError("loss_fn= must be a flaxformers.training.TaskLoss (label keys + loss terms).")
        return loss_fn
    return get_task_loss(task if task is not None else task_for_model(model))


def _split_micro(batch: Batch, steps: int) -> Batch:
    """[B, ...] -> [steps, B / steps, ...], micro-batch k taking rows k, k + steps, ... (even over devices)."""
    def split(x):
        if x.shape[0] % steps:
            raise ValueError(f"Batch size {x.shape[0]} is not divisible by grad_accum_steps={steps}.")
        return jnp.swapaxes(x.reshape(x.shape[0] // steps, steps, *x.shape[1:]), 0, 1)

    return {k: split(v) for k, v in batch.items()}


def mode_flag(model: Any, train: bool) -> dict[str, bool]:
    """`train=` for most models; `deterministic=not train` for those whose 4.57 signature has that instead."""
    parameters = inspect.signature(model.__call__).parameters
    if "train" not in parameters and "deterministic" in parameters:
        return {"deterministic": not train}
    return {"train": train}


def make_loss_fn(model: Any, task_loss: TaskLoss, compute_dtype: Any = None) -> Callable:
    """`loss(params, batch, counts, rng, train) -> (weighted sum / counts, outputs)` for one micro-batch."""
    def loss(params, batch, counts, rng, train):
        inputs = {k: v for k, v in batch.items() if k not in task_loss.label_keys}
        if task_loss.model_inputs is not None:
            inputs = task_loss.model_inputs(model, batch, inputs)
        if compute_dtype is not None:
            params = cast_floating(params, compute_dtype)
        outputs = model(**inputs, params=params, dropout_rng=rng if train else None, return_dict=True,
                        **mode_flag(model, train))
        terms = task_loss.terms(batch, model.config)
        value = sum(t.weight * t.total(outputs) / c for t, c in zip(terms, counts))
        return value, outputs

    return loss


def _counts(task_loss: TaskLoss, batch: Batch, config: Any) -> list[jax.Array]:
    # An all-ignored batch counts 1, so it adds a zero loss instead of NaN (torch would give NaN).
    return [jnp.maximum(t.count(), 1.0) for t in task_loss.terms(batch, config)]


def _num_tokens(batch: Batch) -> jax.Array:
    if "attention_mask" in batch:
        return jnp.sum(batch["attention_mask"]).astype(jnp.float32)
    return jnp.asarray(batch["input_ids"].size, jnp.float32)


def make_train_step(
    model: Any,
    optimizer: optax.GradientTransformation,
    *,
    task: str | None = None,
    loss_fn: TaskLoss | None = None,
    grad_accum_steps: int = 1,
    max_grad_norm: float | None = None,
    compute_dtype: Any = None,
    learning_rate: Callable[[jax.Array], jax.Array] | float | None = None,
    mesh: Mesh | None = None,
    rules: Rules | None = None,
    donate: bool = True,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """A jitted `step(state, batch) -> (state, metrics)`.

    The loss is the head's (`task_for_model`) unless `task=` or `loss_fn=` says otherwise. With
    `grad_accum_steps=k` the batch is split in k micro-batches whose gradients add up to the
    full batch's exactly (token losses divide by the whole batch's token count). Gradients are
    clipped to `max_grad_norm` (global norm) before the optimizer. `compute_dtype=jnp.bfloat16`
    runs the forward and backward in bf16 while `state.params` and the update stay fp32.
    Metrics: loss, grad_norm (before clipping), num_tokens, and learning_rate when given.
    With `mesh=`, state and batch are sharded by the family's rules and the step is SPMD.
    """
    if grad_accum_steps < 1:
        raise ValueError(f"grad_accum_steps={grad_accum_steps}; expected an integer >= 1.")
    task_loss = _resolve_loss(model, task, loss_fn)
    loss = make_loss_fn(model, task_loss, compute_dtype)
    grad_fn = jax.value_and_grad(loss, has_aux=True)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        rng, step_rng = jax.random.split(state.rng)
        counts = _counts(task_loss, batch, model.config)
        if grad_accum_steps == 1:
            (value, _), grads = grad_fn(state.params, batch, counts, step_rng, True)
        else:
            def micro(carry, xs):
                index, micro_batch = xs
                (value, _), grads = grad_fn(state.params, micro_batch, counts, jax.random.fold_in(step_rng, index), True)
                acc_value, acc_grads = carry
                return (acc_value + value, jax.tree_util.tree_map(jnp.add, acc_grads, grads)), None

            zeros = jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape, jnp.float32), state.params)
            xs = (jnp.arange(grad_accum_steps), _split_micro(batch, grad_accum_steps))
            (value, grads), _ = jax.lax.scan(micro, (jnp.zeros((), jnp.float32), zeros), xs)
        grads = jax.tree_util.tree_map(lambda g, p: g.astype(p.dtype), grads, state.params)
        grad_norm = optax.tree.norm(grads)
        if max_grad_norm is not None:
            scale = jnp.minimum(1.0, max_grad_norm / jnp.maximum(grad_norm, 1e-12))
            grads = jax.tree_util.tree_map(lambda g: g * scale.astype(g.dtype), grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": value.astype(jnp.float32), "grad_norm": grad_norm, "num_tokens": _num_tokens(batch)}
        if learning_rate is not None:
            lr = learning_rate(state.step) if callable(learning_rate) else learning_rate
            metrics["learning_rate"] = jnp.asarray(lr, jnp.float32)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state, rng=rng), metrics

    donate_argnums = (0,) if donate else ()
    if mesh is None:
        return jax.jit(step, donate_argnums=donate_argnums)
    rules = partition_rules(model) if rules is None else rules
    replicated = NamedSharding(mesh, P())
    cache: dict[Any, Callable] = {}

    def sharded_step(state: TrainState, batch: Batch):
        # Shardings follow the state's structure and the batch's ranks: build (and cache) per shape.
        key = (jax.tree_util.tree_structure(state), tuple(sorted((k, jnp.ndim(v)) for k, v in batch.items())))
        if key not in cache:
            state_sh = tree_shardings(state, mesh, rules)
            batch_sh = {k: batch_sharding(mesh, jnp.ndim(v)) for k, v in batch.items()}
            cache[key] = jax.jit(step, in_shardings=(state_sh, batch_sh), out_shardings=(state_sh, replicated),
                                 donate_argnums=donate_argnums)
        return cache[key](state, batch)

    return sharded_step


def make_eval_step(
    model: Any, *, task: str | None = None, loss_fn: TaskLoss | None = None, compute_dtype: Any = None,
) -> Callable[[Any, Batch], dict[str, jax.Array]]:
    """A jitted `eval(params, batch) -> {'loss', 'count'}` (no dropout); average losses with `count`."""
    task_loss = _resolve_loss(model, task, loss_fn)
    loss = make_loss_fn(model, task_loss, compute_dtype)

    @jax.jit
    def evaluate(params, batch):
        counts = _counts(task_loss, batch, model.config)
        value, _ = loss(params, batch, counts, None, False)
        return {"loss": value, "count": counts[0]}

    return evaluate


def shard_train_state(state: TrainState, model: Any, mesh: Mesh, rules: Rules | None = None) -> TrainState:
    """Place a train state on `mesh` (params and optimizer moments by the family's rules)."""
    from flaxformers.training.sharding import place

    rules = partition_rules(model) if rules is None else rules
    return jax.tree_util.tree_map(place, state, tree_shardings(state, mesh, rules))

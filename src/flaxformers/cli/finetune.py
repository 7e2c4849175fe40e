"""`flaxformers finetune --model PATH --train-file FILE --task TASK`: fine-tune a model with optax.

Tasks: causal-lm, masked-lm, sequence-classification, token-classification, question-answering,
multiple-choice, seq2seq-lm (encoder-decoders: `source` and `target` fields). The data formats are those of `flaxformers.training.data` (.txt, .jsonl, .json,
.csv, .tsv; text or pre-tokenized `input_ids`). Training is AdamW with linear warmup and decay,
gradient accumulation and clipping, optional bf16 compute, remat and scan-over-layers, and a
device mesh (--mesh DATA,FSDP,TENSOR). A progress bar shows the loss and tokens/s; --eval-file is
scored every --eval-every steps. Checkpoints (params, optimizer state, step, RNG) are written
atomically to OUTPUT_DIR/checkpoints every --save-every steps and a rerun of the same command
resumes from the latest one, with the same data order: the result equals an uninterrupted run.
The fine-tuned model is saved to OUTPUT_DIR in Hugging Face layout (config.json + safetensors).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from typing import Any

from flaxformers.training.data import TASK_NAMES, fields_help


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a model on a data file", description=__doc__,
                              epilog=fields_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model directory or repo id")
    p.add_argument("--train-file", required=True, help=".txt, .jsonl, .json, .csv or .tsv")
    p.add_argument("--task", required=True, choices=TASK_NAMES, help="which head to train")
    p.add_argument("--eval-file", default=None, help="scored every --eval-every steps and at the end")
    p.add_argument("--output-dir", default="finetuned", help="where checkpoints and the final model go")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: --model)")
    p.add_argument("--max-length", type=int, default=128, help="tokens per example (default 128)")
    p.add_argument("--max-target-length", type=int, default=None,
                   help="seq2seq-lm: target tokens per example (default: --max-length)")
    p.add_argument("--batch-size", type=int, default=8, help="examples per optimizer step (default 8)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (default 1)")
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="clip the global gradient norm (0: off)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the data (default 1)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (overrides --epochs)")
    p.add_argument("--seed", type=int, default=0, help="data order, dropout and masking")
    p.add_argument("--bf16", action="store_true", help="compute in bfloat16 (master weights stay float32)")
    p.add_argument("--gradient-checkpointing", nargs="?", const="", default=None, metavar="POLICY",
                   help="remat each layer; optional jax.checkpoint_policies name (e.g. dots_saveable)")
    p.add_argument("--scan-layers", action="store_true", help="scan over stacked layers (faster compile)")
    p.add_argument("--mesh", default=None, metavar="DATA,FSDP,TENSOR",
                   help="shard over a device mesh, e.g. 2,2,2 (default: one device)")
    p.add_argument("--num-labels", type=int, default=None, help="classifier size (default: from the data)")
    p.add_argument("--ignore-mismatched-sizes", action="store_true",
                   help="re-initialise head weights whose shape differs from the checkpoint")
    p.add_argument("--mask-token-id", type=int, default=None, help="masked-lm without a tokenizer")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: only at the end)")
    p.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps (default 100)")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept (default 2)")
    p.add_argument("--log-every", type=int, default=1, help="refresh loss and tokens/s every N steps")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming from OUTPUT_DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)  # tests: crash after step N
    p.set_defaults(func=run)


def _tokenizer(args: argparse.Namespace) -> Any:
    from flaxformers.tokenizers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    except (OSError, ValueError):
        if args.tokenizer is not None:
            raise
        return None  # pre-tokenized data needs none; text data says so clearly


def _optimizer(args: argparse.Namespace, total_steps: int):
    import jax
    import optax

    warmup = min(args.warmup_steps, total_steps)
    schedule = optax.join_schedules([
        optax.linear_schedule(0.0, args.learning_rate, max(warmup, 1)),
        optax.linear_schedule(args.learning_rate, 0.0, max(total_steps - warmup, 1)),
    ], [warmup]) if warmup else optax.linear_schedule(args.learning_rate, 0.0, max(total_steps, 1))
    # No weight decay on biases and norm scales (1-D params), as transformers' examples do.
    decay_mask = lambda params: jax.tree_util.tree_map(lambda p: p.ndim > 1, params)  # noqa: E731
    return optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=args.weight_decay, mask=decay_mask), schedule


def _parse_mesh(spec: str | None):
    if spec is None:
        return None
    from flaxformers.training.sharding import make_mesh

    try:
        data, fsdp, tensor = (int(x) for x in spec.split(","))
    except ValueError:
        raise ValueError(f"--mesh {spec!r}: expected three integers DATA,FSDP,TENSOR, e.g. 2,2,2.") from None
    return make_mesh(data, fsdp, tensor)


def run(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from tqdm.auto import tqdm

    from flaxformers.auto import model_class_for, read_model_type
    from flaxformers.training import checkpoint as ckpt
    from flaxformers.training.data import batch_at, build_dataset, eval_batches, mask_tokens, read_records
    from flaxformers.training.sharding import shard_batch
    from flaxformers.training.train_step import TrainState, make_eval_step, make_train_step, shard_train_state

    for name in ("batch_size", "max_length", "grad_accum", "save_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}.")
    if args.batch_size % args.grad_accum:
        raise ValueError(f"--batch-size {args.batch_size} must be a multiple of --grad-accum {args.grad_accum}.")
    checkpoint_dir = os.path.join(args.output_dir, "checkpoints")
    if args.overwrite and os.path.isdir(checkpoint_dir):
        shutil.rmtree(checkpoint_dir)

    # --- data and model ---------------------------------------------------------------------------
    model_type = read_model_type(args.model)
    model_cls = model_class_for(model_type, args.task)
    tokenizer = _tokenizer(args)
    config = model_cls.config_class.from_pretrained(args.model)
    train, implied = build_dataset(args.task, read_records(args.train_file), tokenizer, config, args.max_length,
                                   args.max_target_length)
    if args.num_labels is not None:
        implied["num_labels"] = args.num_labels
    evaluation = None
    if args.eval_file is not None:
        evaluation, _ = build_dataset(args.task, read_records(args.eval_file), tokenizer, config, args.max_length,
                                      args.max_target_length)
    mesh = _parse_mesh(args.mesh)
    overrides: dict[str, Any] = {k: v for k, v in implied.items() if v is not None}
    if args.scan_layers:
        overrides["scan_layers"] = True
    model = model_cls.from_pretrained(args.model, mesh=mesh, ignore_mismatched_sizes=args.ignore_mismatched_sizes,
                                      **overrides)
    if args.gradient_checkpointing is not None:
        model.enable_gradient_checkpointing(args.gradient_checkpointing or None)

    mask_id, special_ids = None, set()
    if args.task == "masked-lm":
        mask_id = args.mask_token_id if args.mask_token_id is not None else getattr(tokenizer, "mask_token_id", None)
        if mask_id is None:
            raise ValueError("masked-lm needs a mask token: use a tokenizer with one, or pass --mask-token-id.")
        if tokenizer is not None:
            special_ids = {i for i in (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id,
                                       tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None}

    def batch_for(step: int, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = batch_at(arrays, step, args.batch_size, args.seed)
        if args.task == "masked-lm":
            rng = np.random.RandomState((args.seed * 1_000_003 + step) % 2**32)
            batch["input_ids"], batch["labels"] = mask_tokens(batch["input_ids"], rng, mask_id,
                                                              model.config.vocab_size, special_ids)
        return batch

    num_examples = len(train["input_ids"])
    per_epoch = num_examples // args.batch_size
    if per_epoch == 0:
        raise ValueError(f"{num_examples} training examples are fewer than one batch of {args.batch_size}; "
                         "lower --batch-size.")
    total_steps = args.max_steps if args.max_steps is not None else max(1, int(args.epochs * per_epoch))

    # --- state, resumed when a checkpoint exists ------------------------------------------------------
    optimizer, schedule = _optimizer(args, total_steps)
    state = TrainState.create(model.params, optimizer, seed=args.seed, copy=False)
    start = 0
    latest = ckpt.latest_checkpoint(checkpoint_dir)
    if latest is not None:
        state, meta = ckpt.load_train_state(latest, state)
        start = int(meta["step"])
    state = shard_train_state(state, model, mesh) if mesh is not None else jax.device_put(state)
    compute_dtype = jnp.bfloat16 if args.bf16 else None
    step_fn = make_train_step(model, optimizer, task=args.task, grad_accum_steps=args.grad_accum,
                              max_grad_norm=args.max_grad_norm or None, compute_dtype=compute_dtype,
                              learning_rate=schedule, mesh=mesh)
    eval_fn = make_eval_step(model, task=args.task, compute_dtype=compute_dtype) if evaluation is not None else None
    os.makedirs(args.output_dir, exist_ok=True)
    metrics_path = os.path.join(args.output_dir, "metrics.jsonl")

    def log(record: dict[str, Any]) -> None:
        if jax.process_index() == 0:
            with open(metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def put(batch):
        if mesh is None:
            return batch
        if jax.process_count() > 1:  # every process builds the global batch; each hands over its own rows
            rows = len(next(iter(batch.values()))) // jax.process_count()
            start = jax.process_index() * rows
            batch = {k: v[start:start + rows] for k, v in batch.items()}
        return shard_batch(batch, mesh)

    def evaluate(step: int) -> None:
        total = count = 0.0
        for i, batch in enumerate(eval_batches(evaluation, args.batch_size)):
            if args.task == "masked-lm":
                batch = dict(batch)
                rng = np.random.RandomState((args.seed + 7919 * i) % 2**32)  # the same masks at every evaluation
                batch["input_ids"], batch["labels"] = mask_tokens(batch["input_ids"], rng, mask_id,
                                                                  model.config.vocab_size, special_ids)
            out = eval_fn(state.params, put(batch))
            total += float(out["loss"]) * float(out["count"])
            count += float(out["count"])
        if count:
            bar.write(f"step {step}: eval loss {total / count:.4f}")
            log({"step": step, "eval_loss": total / count})

    if start:
        print(f"Resuming from {latest} (step {start} of {total_steps}).", file=sys.stderr)
    bar = tqdm(total=total_steps, initial=start, unit="step", disable=args.quiet or jax.process_index() != 0,
               dynamic_ncols=True)
    tokens, began = 0.0, time.perf_counter()
    step = start
    with bar:
        for step in range(start + 1, total_steps + 1):
            batch = batch_for(step - 1, train)
            tokens += float(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].size
            state, metrics = step_fn(state, put(batch))
            if step % args.log_every == 0 or step == total_steps:
                loss = float(metrics["loss"])
                rate = tokens / max(time.perf_counter() - began, 1e-9)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:,.0f}")
                log({"step": step, "loss": loss, "grad_norm": float(metrics["grad_norm"]),
                     "learning_rate": float(metrics["learning_rate"])})
            bar.update(1)
            if eval_fn is not None and args.eval_every and step % args.eval_every == 0:
                evaluate(step)
            if step % args.save_every == 0 or step == total_steps:
                ckpt.save_train_state(checkpoint_dir, state, step, {"task": args.task, "seed": args.seed},
                                      keep=args.keep_checkpoints)
            if args.stop_after is not None and step >= args.stop_after:
                os.kill(os.getpid(), signal.SIGKILL)  # a crash: no cleanup, no final save
    if eval_fn is not None and not (args.eval_every and step % args.eval_every == 0):
        evaluate(step)
    model.save_pretrained(args.output_dir, params=state.params)
    if tokenizer is not None:
        tokenizer.save_pretrained(args.output_dir)
    print(f"Saved the fine-tuned model to {args.output_dir}", file=sys.stderr)
    return 0

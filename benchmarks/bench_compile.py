"""Compile time vs depth, with and without scan-over-layers.

    python benchmarks/bench_compile.py                    # GPT-2 width 768, 12 and 24 layers, train step
    python benchmarks/bench_compile.py --what forward --layers 6 12 24 --json out.json

For each depth and mode it builds the model without initialising weights (shapes only), then
times `jax.jit(...).lower()` (tracing) and `.compile()` (XLA) of one optax AdamW train step
(forward, backward, update) or of the forward pass. Without scan both grow with the depth; with
scan one block is traced and compiled whatever the depth. Times are wall-clock (and process CPU).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import optax

from flaxformers import FlaxGPT2LMHeadModel, GPT2Config
from flaxformers.training import TrainState, make_train_step


def measure(layers: int, scan: bool, what: str, width: int, batch: int, seq: int, remat: bool) -> dict:
    config = GPT2Config(n_layer=layers, n_embd=width, n_head=max(width // 64, 1), n_positions=max(seq, 64))
    model = FlaxGPT2LMHeadModel(config, _do_init=False, scan_layers=scan)
    if remat:
        model.enable_gradient_checkpointing()
    params = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), model.params_shape_tree)
    ids = jax.ShapeDtypeStruct((batch, seq), jnp.int32)
    if what == "train":
        optimizer = optax.adamw(1e-4)
        state = jax.eval_shape(lambda p: TrainState.create(p, optimizer, copy=False), params)
        fn = make_train_step(model, optimizer, donate=False)
        args = (state, {"input_ids": ids, "attention_mask": ids, "labels": ids})
    else:
        fn = jax.jit(lambda p, x: model(x, params=p).logits)
        args = (params, ids)
    start, cpu = time.perf_counter(), time.process_time()
    lowered = fn.lower(*args)
    traced = time.perf_counter() - start
    start = time.perf_counter()
    lowered.compile()
    compiled = time.perf_counter() - start
    return {"layers": layers, "scan": scan, "what": what, "trace_s": round(traced, 3), "compile_s": round(compiled, 3),
            "total_s": round(traced + compiled, 3), "cpu_s": round(time.process_time() - cpu, 3),
            "hlo_lines": len(lowered.as_text().splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, nargs="+", default=[12, 24])
    parser.add_argument("--what", choices=("train", "forward"), default="train")
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--remat", action="store_true", help="gradient checkpointing in both modes")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, jax {jax.__version__}")
    print(f"GPT-2 width {args.width}, {args.what} step, batch {args.batch} x {args.seq}" + (", remat" if args.remat else ""))
    print(f"{'layers':>6} {'scan':>5} {'trace s':>8} {'compile s':>10} {'total s':>8} {'CPU s':>7} {'HLO lines':>10}")
    rows = []
    for layers in args.layers:
        for scan in (False, True):
            row = measure(layers, scan, args.what, args.width, args.batch, args.seq, args.remat)
            rows.append(row)
            print(f"{layers:>6} {str(scan):>5} {row['trace_s']:>8.2f} {row['compile_s']:>10.2f} {row['total_s']:>8.2f} "
                  f"{row['cpu_s']:>7.2f} {row['hlo_lines']:>10}", flush=True)
    by = {(r["layers"], r["scan"]): r["total_s"] for r in rows}
    lo, hi = min(args.layers), max(args.layers)
    for scan in (False, True):
        print(f"scan={scan}: {hi} layers / {lo} layers = {by[(hi, scan)] / by[(lo, scan)]:.2f}x")
    for layers in args.layers:
        print(f"{layers} layers: unrolled / scan = {by[(layers, False)] / by[(layers, True)]:.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

"""Greedy decoding speed: flaxformers vs transformers PyTorch and vs the machine's roofline, in one run.

The issue's case: GPT-2 small shape (124M, random weights, the same weights on both sides), fp32,
a 32-token prompt, 128 new tokens (no EOS), batch 1 and 8. transformers runs eager PyTorch with its
default cache. The roofline step is weight bytes / measured read bandwidth (benchmarks/roofline.py).
The step's weight matmuls alone (XLA and PyTorch) are timed too: the floor each framework's gemm sets.
Also measured: our first call (compile included), compilations on later calls in the same prompt
bucket, and the bf16 decode step against ours in fp32. Times are the best of --repeats runs.

    python benchmarks/bench_generate.py                     # the whole table (a few minutes on 2 cores)
    python benchmarks/bench_generate.py --batch 1 --new-tokens 32 --repeats 2 --no-bf16   # quick look
    python benchmarks/bench_generate.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import roofline  # noqa: E402

TARGETS = {  # what the issue asks for
    "step_vs_roofline_b1": ("<=", 1.15),
    "tokens_per_s_vs_torch_b1": (">=", 1.3),
    "tokens_per_s_vs_torch_b8": (">=", 1.8),
    "first_call_s": ("<=", 10.0),
    "compiles_after_first": ("<=", 0),
    "bf16_step_vs_fp32": ("<=", 0.6),
}


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torch_generate_times(model, batch: int, prompt_len: int, new_tokens: int, repeats: int) -> dict[str, float]:
    """transformers' generate, eager, default (dynamic) cache: whole-call tokens/s and a step time
    (the difference between new_tokens and 1 new token, per token)."""
    import torch

    ids = torch.tensor(np.random.default_rng(1).integers(0, model.config.vocab_size, (batch, prompt_len)))
    mask = torch.ones_like(ids)

    def run(n: int):
        with torch.inference_mode():
            model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                           eos_token_id=None, pad_token_id=0)

    run(new_tokens)  # warm-up
    full = _best(lambda: run(new_tokens), repeats)
    one = _best(lambda: run(1), repeats)
    return {"generate_s": full, "tokens_per_s": batch * new_tokens / full,
            "step_s": (full - one) / (new_tokens - 1)}


def matmul_floor(params, batch: int, repeats: int) -> dict[str, float]:
    """The decode step's weight matmuls and nothing else, in XLA and in PyTorch: [batch, in] @ every
    2-D kernel, and the tied head. What either framework's gemm costs bounds what its step can reach."""
    import jax
    import jax.numpy as jnp
    import torch

    kernels = [np.array(x) for path, x in jax.tree_util.tree_leaves_with_path(params)
               if x.ndim == 2 and "kernel" in jax.tree_util.keystr(path)]
    embedding = np.array(params["transformer"]["wte"]["embedding"])  # [V, D]: the tied head reads it as is

    @jax.jit
    def xla(ks, emb, x):
        total = jnp.einsum("bd,vd->bv", x, emb).sum()
        for k in ks:
            total += (jnp.ones((batch, k.shape[0]), k.dtype) * x[:, :1] @ k).sum()
        return total

    x = jnp.ones((batch, embedding.shape[1]), jnp.float32)
    jk, je = [jnp.asarray(k) for k in kernels], jnp.asarray(embedding)
    xla(jk, je, x).block_until_ready()
    tk, te, tx = [torch.from_numpy(k) for k in kernels], torch.from_numpy(embedding), torch.ones(batch, embedding.shape[1])

    def eager():
        with torch.inference_mode():
            total = (tx @ te.T).sum()
            for k in tk:
                total += (torch.ones(batch, k.shape[0]) * tx[:, :1] @ k).sum()
            return total

    eager()
    return {"xla": _best(lambda: xla(jk, je, x).block_until_ready(), repeats * 3),
            "torch": _best(eager, repeats * 3)}


def check_same_tokens(ours, theirs, prompt_len: int, n: int = 16) -> float:
    """Fraction of equal greedy tokens over n steps (random 124M weights: near-ties can flip late ones)."""
    import torch

    ids = np.random.default_rng(2).integers(0, ours.config.vocab_size, (1, prompt_len)).astype(np.int32)
    a = np.asarray(ours.generate(ids, max_new_tokens=n, eos_token_id=None, pad_token_id=0).sequences)[0, prompt_len:]
    with torch.inference_mode():
        b = theirs.generate(torch.tensor(ids, dtype=torch.long), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                            eos_token_id=None, pad_token_id=0)[0, prompt_len:].numpy()
    return float((a == b).mean())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip transformers PyTorch")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 step")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import torch
    import transformers

    from flaxformers import FlaxGPT2LMHeadModel
    from flaxformers.generation.benchmark import time_generate

    torch.manual_seed(0)
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    with tempfile.TemporaryDirectory() as tmp:  # the same weights on both sides
        theirs.save_pretrained(tmp)
        ours = FlaxGPT2LMHeadModel.from_pretrained(tmp)
        ours_bf16 = None if args.no_bf16 else FlaxGPT2LMHeadModel.from_pretrained(tmp, dtype=jnp.bfloat16)
    if ours_bf16 is not None:
        ours_bf16.params = ours_bf16.to_bf16(ours_bf16.params)
    weight_bytes = roofline.weight_bytes(ours.params, skip=("wpe",))  # positions: one row gathered per step

    result: dict = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "jax": jax.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
                    "torch_threads": torch.get_num_threads(), "load_avg": os.getloadavg()},
        "case": {"model": "GPT-2 small shape, random weights", "dtype": "float32", "prompt": args.prompt,
                 "new_tokens": args.new_tokens, "weight_mb": weight_bytes / 1e6},
    }
    print(f"GPT-2 small shape, fp32, prompt {args.prompt}, {args.new_tokens} new tokens, greedy; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    first = roofline.measure()
    print(f"read bandwidth {first['best'] / 1e9:.1f} GB/s ({weight_bytes / 1e6:.0f} MB of weights)", flush=True)

    ratios: dict[str, float] = {}
    for batch in args.batch:
        r = time_generate(ours, batch=batch, prompt_len=args.prompt, new_tokens=args.new_tokens, repeats=args.repeats)
        row = {"flaxformers": r, "matmul_floor_s": matmul_floor(ours.params, batch, args.repeats)}
        if batch == args.batch[0]:
            ratios["first_call_s"] = r["first_call_s"]
        ratios["compiles_after_first"] = max(ratios.get("compiles_after_first", 0), r["compiles_after_first"])
        line = (f"batch {batch}: flaxformers {r['tokens_per_s']:.1f} tok/s, step {r['step_s'] * 1e3:.2f} ms, "
                f"prefill {r['prefill_s'] * 1e3:.0f} ms")
        if not args.no_torch:
            t = torch_generate_times(theirs, batch, args.prompt, args.new_tokens, args.repeats)
            row["transformers"] = t
            ratios[f"tokens_per_s_vs_torch_b{batch}"] = r["tokens_per_s"] / t["tokens_per_s"]
            line += (f" | transformers {t['tokens_per_s']:.1f} tok/s, step {t['step_s'] * 1e3:.2f} ms "
                     f"| speed-up {r['tokens_per_s'] / t['tokens_per_s']:.2f}x")
        floor = row["matmul_floor_s"]
        line += (f" | the step's matmuls alone: XLA {floor['xla'] * 1e3:.2f} ms, "
                 f"PyTorch {floor['torch'] * 1e3:.2f} ms")
        result[f"batch_{batch}"] = row
        print(line, flush=True)

    # Measured again after the timings: the roofline is the best bandwidth of the run.
    last = roofline.measure()
    result["bandwidth_gb_s"] = {"first": {k: v / 1e9 for k, v in first.items()},
                                "last": {k: v / 1e9 for k, v in last.items()}, "used": roofline.bandwidth() / 1e9}
    roof_step = roofline.roofline_step_seconds(weight_bytes)
    print(f"read bandwidth {last['best'] / 1e9:.1f} GB/s at the end; roofline step {roof_step * 1e3:.2f} ms "
          f"at the best, {roofline.bandwidth() / 1e9:.1f} GB/s", flush=True)
    for batch in args.batch:
        row = result[f"batch_{batch}"]
        ratios[f"step_vs_roofline_b{batch}"] = row["flaxformers"]["step_s"] / roof_step
        if "transformers" in row:
            ratios[f"torch_step_vs_roofline_b{batch}"] = row["transformers"]["step_s"] / roof_step
        ratios[f"matmul_floor_vs_roofline_b{batch}"] = row["matmul_floor_s"]["xla"] / roof_step

    if ours_bf16 is not None:
        fp32_step = result[f"batch_{args.batch[0]}"]["flaxformers"]["step_s"]
        b = time_generate(ours_bf16, batch=args.batch[0], prompt_len=args.prompt, new_tokens=args.new_tokens,
                          repeats=args.repeats)
        result["bf16"] = b
        ratios["bf16_step_vs_fp32"] = b["step_s"] / fp32_step
        print(f"bf16 batch {args.batch[0]}: step {b['step_s'] * 1e3:.2f} ms ({b['step_s'] / fp32_step:.2f}x fp32), "
              f"{b['tokens_per_s']:.1f} tok/s", flush=True)
    if not args.no_torch:
        result["same_greedy_tokens"] = check_same_tokens(ours, theirs, args.prompt)

    result["ratios"] = ratios
    print("\nratio                         measured   target")
    for name, value in ratios.items():
        target = TARGETS.get(name)
        mark = ""
        if target is not None:
            ok = value <= target[1] if target[0] == "<=" else value >= target[1]
            mark = f"{target[0]} {target[1]:<5} {'ok' if ok else 'MISSED'}"
        print(f"{name:<28} {value:>9.2f}   {mark}")
    if "same_greedy_tokens" in result:
        print(f"greedy tokens equal to transformers over 16 steps: {result['same_greedy_tokens']:.0%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()

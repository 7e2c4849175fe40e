"""Greedy decode speed of a small Gemma: flaxformers vs transformers PyTorch, same weights, one run.

The shape is issue 4's: hidden 1024, 8 layers, 8 heads, 1 KV head, head_dim 128, FFN 4096, vocab 32000;
batch 1, a 32-token prompt, 64 new tokens, greedy. Both sides generate exactly `--new-tokens` tokens
(no EOS), their tokens are compared, and tokens/s counts new tokens over the whole `generate` call
(prefill included), best of `--runs` after a warm-up (which compiles ours).

    python benchmarks/bench_gemma.py                 # fp32, the issue's shape
    python benchmarks/bench_gemma.py --dtype bfloat16 --json out.json
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

SHAPE = dict(vocab_size=32000, hidden_size=1024, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=1,
             head_dim=128, intermediate_size=4096, max_position_embeddings=8192)


def _best_time(fn, runs: int) -> float:
    fn()  # warm-up: compiles ours, fills torch's allocator caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _roofline(params_bytes: int, tokens_per_s: float) -> dict | None:
    """Decode reads every weight once per token: the memory-bandwidth bound, when benchmarks/roofline.py has it."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import roofline  # written with the generation engine; optional here
    except ImportError:
        return None
    fn = getattr(roofline, "decode_roofline", None)
    if fn is None:
        return None
    try:
        return fn(params_bytes=params_bytes, tokens_per_s=tokens_per_s)
    except TypeError:
        return None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--layers", type=int, default=SHAPE["num_hidden_layers"], help="smaller for a quick check")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import torch
    import transformers

    from flaxformers import FlaxGemmaForCausalLM

    shape = {**SHAPE, "num_hidden_layers": args.layers}
    torch.manual_seed(0)
    # No EOS, so both sides make exactly --new-tokens tokens.
    ref = transformers.GemmaForCausalLM(
        transformers.GemmaConfig(**shape, eos_token_id=None, bos_token_id=2, pad_token_id=0)
    ).eval()
    torch_dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    with tempfile.TemporaryDirectory() as path:
        ref.save_pretrained(path)
        ours = FlaxGemmaForCausalLM.from_pretrained(path, dtype=jnp.dtype(args.dtype))
    if args.dtype == "bfloat16":
        ours.params = ours.to_bf16(ours.params)
    torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    ref = ref.to(device=torch_device, dtype=torch_dtype)

    prompt = np.random.RandomState(0).randint(3, shape["vocab_size"], (1, args.prompt)).astype(np.int32)
    settings = dict(max_new_tokens=args.new_tokens, do_sample=False, num_beams=1, pad_token_id=0)

    def run_ours():
        return np.asarray(ours.generate(prompt, **settings).sequences)

    def run_torch():
        with torch.inference_mode():
            ids = torch.tensor(prompt, dtype=torch.long, device=torch_device)
            return ref.generate(ids, attention_mask=torch.ones_like(ids), eos_token_id=None, **settings).cpu().numpy()

    ours_s = _best_time(run_ours, args.runs)
    torch_s = _best_time(run_torch, args.runs)
    ours_tokens, torch_tokens = run_ours(), run_torch()
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(ours.params))
    result = {
        "shape": shape, "dtype": args.dtype, "batch": 1, "prompt": args.prompt, "new_tokens": args.new_tokens,
        "device": str(jax.devices()[0]), "torch_device": torch_device, "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "flaxformers_tokens_per_s": args.new_tokens / ours_s,
        "transformers_tokens_per_s": args.new_tokens / torch_s,
        "ratio": torch_s / ours_s,
        "target_ratio": 1.3,
        "same_tokens": bool(np.array_equal(ours_tokens, torch_tokens)),
        "params": n_params,
    }
    bound = _roofline(n_params * jnp.dtype(args.dtype).itemsize, result["flaxformers_tokens_per_s"])
    if bound is not None:
        result["roofline"] = bound
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()

"""`flaxformers bench TARGET`: quick speed checks on this machine.

    flaxformers bench generate                       # GPT-2 small shape, random weights, fp32
    flaxformers bench generate --model DIR --batch 8 --dtype bfloat16

`generate` decodes exactly --new-tokens tokens greedily from random --prompt-len prompts and prints
tokens/s, the decode step time, the prefill time and the first call's time (compile included).
The side-by-side comparison with transformers and the roofline is `python benchmarks/bench_generate.py`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

# target name -> (help, function adding its arguments, function running it)
TARGETS: dict[str, tuple[str, Callable, Callable]] = {}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="measure speed on this machine", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    targets = p.add_subparsers(dest="target", required=True)
    for name, (help_text, add_arguments, run) in TARGETS.items():
        sub = targets.add_parser(name, help=help_text)
        add_arguments(sub)
        sub.set_defaults(func=run)


# --- generate ------------------------------------------------------------------------------------
def _generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model directory, .gguf or repo id (default: random GPT-2 small)")
    p.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes (default 1)")
    p.add_argument("--prompt-len", type=int, default=32, help="prompt tokens (default 32)")
    p.add_argument("--new-tokens", type=int, default=128, help="new tokens per row (default 128)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="weights and compute dtype")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported (default 3)")


def gpt2_small(dtype: str = "float32", seed: int = 0):
    """A GPT-2 small shaped model (124M) with random weights, initialised in one compiled call."""
    import jax
    import jax.numpy as jnp

    from flaxformers import FlaxGPT2LMHeadModel, GPT2Config

    model = FlaxGPT2LMHeadModel(GPT2Config(), dtype=jnp.dtype(dtype), _do_init=False)
    params = jax.jit(model.init_weights, static_argnums=1)(jax.random.PRNGKey(seed), (1, 1))
    model._is_initialized = True
    model.params = model._cast_floating_to(params, jnp.dtype(dtype)) if dtype != "float32" else params
    return model


def _run_generate(args: argparse.Namespace) -> int:
    from flaxformers.generation.benchmark import time_generate

    if min(args.batch) < 1 or args.new_tokens < 2 or args.prompt_len < 1 or args.repeats < 1:
        raise ValueError("--batch, --prompt-len and --repeats must be >= 1 and --new-tokens >= 2.")
    if args.model is None:
        model, name = gpt2_small(args.dtype), "GPT-2 small shape (124M, random weights)"
    else:
        from flaxformers.cli.generate import load_model

        model, name = load_model(args.model, args.dtype)[0], args.model
    print(f"{name}, {args.dtype}, prompt {args.prompt_len}, {args.new_tokens} new tokens, greedy")
    print(f"{'batch':>5} {'tokens/s':>9} {'step ms':>8} {'prefill ms':>10} {'first call s':>12} {'recompiles':>10}")
    for batch in args.batch:
        r = time_generate(model, batch=batch, prompt_len=args.prompt_len, new_tokens=args.new_tokens,
                          repeats=args.repeats)
        print(f"{batch:>5} {r['tokens_per_s']:>9.1f} {r['step_s'] * 1e3:>8.2f} {r['prefill_s'] * 1e3:>10.1f} "
              f"{r['first_call_s']:>12.2f} {r['compiles_after_first']:>10}", flush=True)
    return 0


TARGETS["generate"] = ("tokens/s of model.generate", _generate_arguments, _run_generate)

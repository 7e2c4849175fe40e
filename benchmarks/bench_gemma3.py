"""Gemma 3 270M (the real Q4_K_M GGUF): decode speed and cold start, flaxformers vs transformers PyTorch.

Speed, in this process: greedy generation at batch 1 of exactly `--new-tokens` tokens (no EOS) from a
`--prompt`-token prompt. Both sides use the same fp32 weights, dequantized once from the GGUF by
flaxformers (tests/test_gemma3_real.py checks they equal transformers' own dequantization bit for
bit); transformers' Gemma3ForCausalLM is built on them directly. Ours runs in fp32 and in bf16
(params and compute). tokens/s counts new tokens over whole `generate` calls, best of `--repeats`
after a warm-up; the decode step is also shown against the machine's memory-bandwidth roofline.

Cold start, each in a fresh subprocess: interpreter start, imports, loading the GGUF (model and
tokenizer), compiling, and the first generated token -- `flaxformers.defaults.load_causal_lm` and
`generate(max_new_tokens=1)` against transformers' `AutoTokenizer` / `AutoModelForCausalLM` with
`gguf_file=` and `generate(max_new_tokens=1)`. No compilation cache is used.

    python benchmarks/bench_gemma3.py                       # everything (a few minutes on 2 cores)
    python benchmarks/bench_gemma3.py --no-cold-start --new-tokens 32 --repeats 2
    python benchmarks/bench_gemma3.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import roofline  # noqa: E402

TARGETS = {  # what issue 8 asks for
    "tokens_per_s_vs_torch_fp32": (">=", 1.3),
    "cold_start_vs_torch": ("<=", 1.0),
}
PROMPT = "The capital of France is"

OURS_COLD = """
import json, sys, time
start = time.perf_counter()
import jax, numpy as np
from flaxformers.defaults import load_causal_lm
imported = time.perf_counter()
model, tokenizer = load_causal_lm(sys.argv[1], dtype=sys.argv[3])
loaded = time.perf_counter()
batch = tokenizer(sys.argv[2])
out = model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=1, do_sample=False)
token = int(np.asarray(jax.block_until_ready(out.sequences))[0, -1])
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported, "first_token_s": done - loaded,
                  "token": token}))
"""

TORCH_COLD = """
import json, os, sys, time
start = time.perf_counter()
import torch, transformers
imported = time.perf_counter()
directory, name = os.path.split(sys.argv[1])
tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
loaded = time.perf_counter()
with torch.inference_mode():
    out = model.generate(**tokenizer(sys.argv[2], return_tensors="pt"), max_new_tokens=1, do_sample=False)
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported, "first_token_s": done - loaded,
                  "token": int(out[0, -1])}))
"""


def cold_start(script: str, *args: str) -> dict:
    """Run `script` in a fresh interpreter; wall time from launch to exit, plus its own phases."""
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"cold-start run failed:\n{proc.stderr[-3000:]}")
    phases = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, **phases}


def torch_reference(config: dict, state_dict: dict):
    """transformers' Gemma3ForCausalLM on our dequantized weights (transformers 5 rope keys)."""
    import torch
    import transformers

    rope = {"full_attention": {"rope_type": "default", "rope_theta": config["rope_theta"]},
            "sliding_attention": {"rope_type": "default", "rope_theta": config["rope_local_base_freq"]}}
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "sliding_window",
            "layer_types", "query_pre_attn_scalar", "bos_token_id", "eos_token_id", "pad_token_id")
    hf_config = transformers.Gemma3TextConfig(**{k: config[k] for k in keys}, rope_parameters=rope,
                                              tie_word_embeddings=True)
    model = transformers.Gemma3ForCausalLM(hf_config)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()},
                                                strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    model.tie_weights()
    return model.eval()


def torch_tokens_per_s(model, prompt_len: int, new_tokens: int, repeats: int) -> dict[str, float]:
    import torch

    ids = torch.tensor(np.random.default_rng(1).integers(3, model.config.vocab_size, (1, prompt_len)))

    def run(n: int) -> None:
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                           do_sample=False, eos_token_id=None, pad_token_id=0)

    run(new_tokens)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(new_tokens)
        times.append(time.perf_counter() - start)
    one = min(_timed(lambda: run(1)) for _ in range(repeats))
    best = min(times)
    return {"generate_s": best, "tokens_per_s": new_tokens / best, "step_s": (best - one) / (new_tokens - 1)}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def same_greedy_tokens(ours, torch_model, tokenizer, n: int = 16) -> bool:
    import torch

    ids = np.asarray([tokenizer.encode(PROMPT)], np.int32)
    a = np.asarray(ours.generate(ids, max_new_tokens=n, do_sample=False).sequences)[0, ids.shape[1]:]
    with torch.inference_mode():
        b = torch_model.generate(torch.tensor(ids, dtype=torch.long), max_new_tokens=n, do_sample=False)
    b = b[0, ids.shape[1]:].numpy()
    return a[: len(b)].tolist() == b.tolist()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default=None, help="GGUF file (default: the packaged Gemma 3 270M)")
    parser.add_argument("--prompt", type=int, default=16, help="prompt length in tokens (random ids)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip transformers in the speed part")
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--no-speed", action="store_true", help="cold start only")
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from flaxformers.defaults import gemma3_gguf_path

    gguf = args.gguf or str(gemma3_gguf_path())
    result: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                "load_avg": os.getloadavg()},
                    "case": {"gguf": gguf, "prompt": args.prompt, "new_tokens": args.new_tokens, "batch": 1}}
    ratios: dict[str, float] = {}
    print(f"Gemma 3 270M ({os.path.basename(gguf)}), batch 1, prompt {args.prompt}, {args.new_tokens} new tokens, "
          f"greedy; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)

    # Opening the file: our header parser (vocabulary left as offsets) vs the gguf package's GGUFReader,
    # which builds a Python object per vocabulary entry. Each in a fresh process, CPU seconds.
    for name, code in (("flaxformers", "from flaxformers.checkpoints.gguf import GGUFFile as Open"),
                       ("gguf.GGUFReader", "from gguf import GGUFReader as Open")):
        timing = subprocess.run([sys.executable, "-c", f"{code}\nimport time, sys\nt = time.process_time()\n"
                                 f"Open(sys.argv[1])\nprint(time.process_time() - t)", gguf],
                                capture_output=True, text=True, check=True)
        result[f"open_cpu_s_{name}"] = float(timing.stdout.split()[-1])
    print(f"opening the file: flaxformers {result['open_cpu_s_flaxformers']:.2f} s CPU, "
          f"gguf.GGUFReader {result['open_cpu_s_gguf.GGUFReader']:.2f} s CPU", flush=True)

    if not args.no_speed:
        import jax
        import jax.numpy as jnp
        import torch
        import transformers

        from flaxformers import FlaxGemma3ForCausalLM
        from flaxformers.checkpoints.gguf_mapping import load_gguf_checkpoint
        from flaxformers.generation.benchmark import time_generate
        from flaxformers.tokenizers.gguf import gguf_tokenizer

        result["machine"].update(jax=jax.__version__, torch=torch.__version__, transformers=transformers.__version__,
                                 torch_threads=torch.get_num_threads())
        config, state = load_gguf_checkpoint(gguf)
        ours = FlaxGemma3ForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=gguf)
        weight_bytes = roofline.weight_bytes(ours.params)  # the tied embedding is the head: read every step
        roof = roofline.roofline_step_seconds(weight_bytes)
        print(f"read bandwidth {roofline.bandwidth() / 1e9:.1f} GB/s -> fp32 roofline step {roof * 1e3:.2f} ms "
              f"({weight_bytes / 1e6:.0f} MB)", flush=True)
        r = time_generate(ours, batch=1, prompt_len=args.prompt, new_tokens=args.new_tokens, repeats=args.repeats)
        result["flaxformers_fp32"] = r
        ratios["step_vs_roofline_fp32"] = r["step_s"] / roof
        print(f"flaxformers fp32: {r['tokens_per_s']:.1f} tok/s, step {r['step_s'] * 1e3:.2f} ms "
              f"({r['step_s'] / roof:.2f}x roofline), first call {r['first_call_s']:.1f} s", flush=True)
        if not args.no_bf16:
            bf16 = FlaxGemma3ForCausalLM(ours.config, dtype=jnp.bfloat16, _do_init=False)
            params = ours.to_bf16(ours.params)
            b = time_generate(bf16, params=params, batch=1, prompt_len=args.prompt, new_tokens=args.new_tokens,
                              repeats=args.repeats)
            result["flaxformers_bf16"] = b
            ratios["bf16_step_vs_fp32"] = b["step_s"] / r["step_s"]
            ratios["step_vs_roofline_bf16"] = b["step_s"] / (roof / 2)
            print(f"flaxformers bf16: {b['tokens_per_s']:.1f} tok/s, step {b['step_s'] * 1e3:.2f} ms "
                  f"({b['step_s'] / r['step_s']:.2f}x fp32)", flush=True)
        if not args.no_torch:
            theirs = torch_reference(config, state)
            del state
            t = torch_tokens_per_s(theirs, args.prompt, args.new_tokens, args.repeats)
            result["transformers_fp32"] = t
            ratios["tokens_per_s_vs_torch_fp32"] = r["tokens_per_s"] / t["tokens_per_s"]
            if "flaxformers_bf16" in result:
                ratios["bf16_tokens_per_s_vs_torch_fp32"] = result["flaxformers_bf16"]["tokens_per_s"] / t["tokens_per_s"]
            print(f"transformers fp32: {t['tokens_per_s']:.1f} tok/s, step {t['step_s'] * 1e3:.2f} ms "
                  f"({t['step_s'] / roof:.2f}x roofline)", flush=True)
            result["same_greedy_tokens_16"] = same_greedy_tokens(ours, theirs, gguf_tokenizer(gguf))
            del theirs
        del ours

    if not args.no_cold_start:
        for name, script, extra in (("flaxformers_fp32", OURS_COLD, ("float32",)),
                                    ("flaxformers_bf16", OURS_COLD, ("bfloat16",)),
                                    ("transformers_fp32", TORCH_COLD, ())):
            if name == "flaxformers_bf16" and args.no_bf16:
                continue
            c = cold_start(script, gguf, PROMPT, *extra)
            result[f"cold_start_{name}"] = c
            print(f"cold start {name}: {c['wall_s']:.1f} s to the first token (imports {c['import_s']:.1f} s, "
                  f"load {c['load_s']:.1f} s, compile + first token {c['first_token_s']:.1f} s)", flush=True)
        ratios["cold_start_vs_torch"] = result["cold_start_flaxformers_fp32"]["wall_s"] / result[
            "cold_start_transformers_fp32"]["wall_s"]
        result["cold_start_same_first_token"] = (result["cold_start_flaxformers_fp32"]["token"]
                                                 == result["cold_start_transformers_fp32"]["token"])

    result["ratios"] = ratios
    print("\nratio                              measured   target")
    for name, value in ratios.items():
        target = TARGETS.get(name)
        mark = ""
        if target is not None:
            ok = value <= target[1] if target[0] == "<=" else value >= target[1]
            mark = f"{target[0]} {target[1]:<5} {'ok' if ok else 'MISSED'}"
        print(f"{name:<34} {value:>9.2f}   {mark}")
    for key in ("same_greedy_tokens_16", "cold_start_same_first_token"):
        if key in result:
            print(f"{key}: {result[key]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()

"""Long prompts: prefill time and peak memory of an 8k-token prompt, flaxformers vs transformers (SDPA).

The default models (Gemma 3 270M and SmolLM2-135M-Instruct, from their GGUFs, fp32) each read an
`--tokens`-long prompt and produce one token. flaxformers prefills in 512-token chunks, so attention
never holds a [heads, T, S] score matrix; transformers uses its SDPA attention. Each measurement runs
in a fresh process: its peak resident memory minus the peak after loading is the prefill's extra
memory; the time is the second call's (the first compiles).

    python benchmarks/bench_long_prompt.py                  # both models, 8000 tokens
    python benchmarks/bench_long_prompt.py --models chat --tokens 4000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, os, resource, sys, time
import numpy as np
framework, gguf, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
ids = np.random.default_rng(0).integers(10, 30000, tokens).astype(np.int32)[None]
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if framework == "flaxformers":
    from flaxformers.defaults import load_causal_lm
    model, _ = load_causal_lm(gguf)
    run = lambda: np.asarray(model.generate(ids, max_new_tokens=1, do_sample=False).sequences)
else:
    import torch, transformers
    torch.set_num_threads(os.cpu_count())
    model = transformers.AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf),
                                                              dtype=torch.float32, attn_implementation="sdpa").eval()
    ids_t = torch.tensor(ids, dtype=torch.long)
    def run():
        with torch.inference_mode():
            return model.generate(ids_t, max_new_tokens=1, do_sample=False)
loaded = peak()
start = time.perf_counter(); run(); first = time.perf_counter() - start
start = time.perf_counter(); run(); second = time.perf_counter() - start
print(json.dumps({"first_s": first, "prefill_s": second, "extra_peak_bytes": peak() - loaded, "loaded_bytes": loaded}))
"""


def measure(framework: str, gguf: str, tokens: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, framework, gguf, str(tokens)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=("causal-lm", "chat"), default=["causal-lm", "chat"])
    parser.add_argument("--tokens", type=int, default=8000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from flaxformers.defaults import resolve_default

    results = {}
    for task in args.models:
        gguf = resolve_default(task)
        results[task] = {fw: measure(fw, gguf, args.tokens) for fw in ("flaxformers", "transformers")}
        ours, theirs = results[task]["flaxformers"], results[task]["transformers"]
        print(f"{task} ({gguf.rsplit('/', 1)[-1]}), {args.tokens}-token prompt:")
        print(f"  prefill: flaxformers {ours['prefill_s']:.2f} s, transformers {theirs['prefill_s']:.2f} s "
              f"({ours['prefill_s'] / theirs['prefill_s']:.2f}x); first call (compile) {ours['first_s']:.1f} s")
        print(f"  extra peak memory: flaxformers {ours['extra_peak_bytes'] / 2**20:.0f} MiB, transformers "
              f"{theirs['extra_peak_bytes'] / 2**20:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

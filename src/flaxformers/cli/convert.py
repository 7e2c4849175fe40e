"""`flaxformers convert SRC OUT`: rewrite a checkpoint in another format.

SRC is a model directory (safetensors, sharded safetensors, msgpack or torch .bin) or a .gguf file.
OUT receives config.json, the weights in the chosen format, and the tokenizer/generation files (from a
.gguf, the tokenizer its vocabulary describes, as tokenizer.json).
"""

from __future__ import annotations

import argparse
import os

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
    from flaxformers.checkpoints import io
    from flaxformers.checkpoints.convert import flatten, flax_to_state_dict

    if os.path.abspath(args.source) == os.path.abspath(args.output):
        raise ValueError("output must differ from source: convert writes a new directory.")
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
    if args.to == "bin":
        os.makedirs(args.output, exist_ok=True)
        model.config.architectures = [cls.__name__.removeprefix("Flax")]
        model.config.save_pretrained(args.output)
        state = flax_to_state_dict(flatten(params), cls._conversion_rules(model.config))
        io.write_state_dict({k: v for k, v in state.items()}, args.output, max_shard_size=args.max_shard_size,
                            safe_serialization=False)
    else:
        model.save_pretrained(args.output, params=params, max_shard_size=args.max_shard_size,
                              safe_serialization=args.to == "safetensors")
    if gguf_file is not None:  # the vocabulary lives in the GGUF: write it as tokenizer.json
        from flaxformers.tokenizers.gguf import gguf_tokenizer

        gguf_tokenizer(gguf_file).save_pretrained(args.output)
    else:
        for name in COPIED_FILES:
            if os.path.exists(os.path.join(args.source, name)):
                with open(os.path.join(args.source, name), "rb") as f:
                    io.atomic_write_bytes(os.path.join(args.output, name), f.read())
    print(f"wrote {cls.__name__} as {args.to} to {args.output}")
    return 0

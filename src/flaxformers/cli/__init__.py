"""`flaxformers` command line: one module per subcommand, each with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from flaxformers.progress import enable_progress_bars

# Subcommand modules under flaxformers.cli; each defines `register(subparsers)` and sets `func`.
SUBCOMMANDS = ("generate", "chat", "serve", "embed", "fill_mask", "convert", "bench", "finetune", "transcribe")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flaxformers", description="transformers' Flax models, maintained: generate, chat, serve, embed, fine-tune.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        if importlib.util.find_spec(f"flaxformers.cli.{name}") is not None:
            importlib.import_module(f"flaxformers.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = enable_progress_bars(not getattr(args, "quiet", False))  # loading is never silent
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as e:  # user errors: one clear line, no traceback
        print(f"flaxformers {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        enable_progress_bars(previous)


if __name__ == "__main__":
    sys.exit(main())

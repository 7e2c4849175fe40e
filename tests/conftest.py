import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tiny models: compile time dominates, and LLVM's optimisation level changes speed, not results.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(items):
    """With `-n 2 --dist loadgroup` (scripts/test.sh), a file's tests run on one worker, so its module-scoped
    models are built once; harness tests marked `xdist_group(case)` spread per case instead."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


def pytest_terminal_summary(terminalreporter):
    """The largest fp32 error against the reference per test file (assert_close checks at atol <= 1e-4)."""
    from _helpers import ATOL, PARITY_LOG

    worst: dict[str, tuple[float, int]] = {}
    for test_file, atol, err in PARITY_LOG:
        if atol <= ATOL:
            top, count = worst.get(test_file, (0.0, 0))
            worst[test_file] = (max(top, err), count + 1)
    if worst:
        terminalreporter.section("fp32 parity: largest max abs error per file")
        for test_file, (top, count) in sorted(worst.items()):
            terminalreporter.write_line(f"{test_file:<32} {top:9.2e}  over {count} checks")

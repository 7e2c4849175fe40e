#!/usr/bin/env bash
# Set up (idempotent) and run the test suite: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export JAX_PLATFORMS=cpu HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check src tests benchmarks
# Two workers; a test file (or a harness case) stays on one worker so its models are built once.
exec .venv/bin/python -m pytest -q -n 2 --dist loadgroup --durations=30 "$@"

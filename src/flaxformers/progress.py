"""Progress bars for the long phases of loading (reading, converting, dequantizing weights).

They go to stderr. By default tqdm decides: a terminal shows them, pipes, logs and tests do not.
The CLI turns them on, so that no long phase is silent.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")
_enabled: bool | None = None


def enable_progress_bars(enabled: bool | None = True) -> bool | None:
    """Show (True) or hide (False) loading progress bars; None lets tqdm decide (terminals only).
    Returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, enabled
    return previous


def progress_bar(items: Iterable[T], desc: str, total: int | None = None, unit: str = "tensor",
                 enabled: bool | None = None) -> Iterable[T]:
    """`items`, counted on a bar; `enabled` overrides the setting of `enable_progress_bars`."""
    from tqdm.auto import tqdm

    enabled = _enabled if enabled is None else enabled
    return tqdm(items, desc=desc, total=total, unit=unit, leave=False, file=sys.stderr,
                disable=None if enabled is None else not enabled)

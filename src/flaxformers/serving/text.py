"""Text from a token stream: incremental detokenization and stop strings, shared by chat and the server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TextStream:
    """Feed token ids one at a time; get back the new text that is safe to show.

    Text is held back while it ends in an incomplete UTF-8 sequence ("\\ufffd") or could still become
    one of `stop` strings. `stopped` turns True when a stop string appears; the text before it is kept.
    """

    tokenizer: Any
    stop: Sequence[str] = ()
    skip_special_tokens: bool = True
    ids: list[int] = field(default_factory=list)
    text: str = ""  # everything shown so far
    stopped: bool = False

    def push(self, token_id: int) -> str:
        """The new text made visible by `token_id` (empty while held back)."""
        self.ids.append(int(token_id))
        full = self.tokenizer.decode(self.ids, skip_special_tokens=self.skip_special_tokens)
        for s in self.stop:
            at = full.find(s)
            if at != -1:
                self.stopped = True
                return self._show(full[:at])
        if full.endswith("\ufffd"):
            return ""
        hold = max((k for s in self.stop for k in range(len(s), 0, -1) if full.endswith(s[:k])), default=0)
        return self._show(full[: len(full) - hold])

    def flush(self) -> str:
        """At the end: the text still held back (a partial stop string that never completed)."""
        if self.stopped:
            return ""
        return self._show(self.tokenizer.decode(self.ids, skip_special_tokens=self.skip_special_tokens))

    def _show(self, visible: str) -> str:
        if not visible.startswith(self.text):  # a re-tokenisation changed earlier text: show only what is new
            return ""
        new, self.text = visible[len(self.text):], visible
        return new


__all__ = ["TextStream"]

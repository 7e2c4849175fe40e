"""Streamers: `generate(..., streamer=...)` calls `put(tokens)` with the prompt, then with each new
token [B] as the compiled loop makes it, and `end()` at the end (transformers' protocol)."""

from __future__ import annotations

import queue
import sys
from typing import Any, TextIO

import numpy as np


class BaseStreamer:
    def put(self, value: Any) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


class TextStreamer(BaseStreamer):
    """Decodes the stream of one row and writes whole words to `file` (stdout) as they complete."""

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, file: TextIO | None = None, **decode_kwargs: Any):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.file = file
        self.decode_kwargs = decode_kwargs
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value: Any) -> None:
        value = np.asarray(value)
        if value.ndim > 1 and value.shape[0] > 1:
            raise ValueError(f"{type(self).__name__} streams one row; got a batch of {value.shape[0]}.")
        value = value.reshape(-1)
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.next_tokens_are_prompt = False
        self.token_cache.extend(int(v) for v in value)
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):  # a line is complete: flush it and start over
            printable, self.token_cache, self.print_len = text[self.print_len :], [], 0
        elif text.endswith("\ufffd"):  # an unfinished multi-byte character: wait for the rest
            return
        else:  # print up to the last space, a word may still grow
            printable = text[self.print_len : text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs) if self.token_cache else ""
        printable = text[self.print_len :]
        self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        out = self.file or sys.stdout
        out.write(text + ("\n" if stream_end else ""))
        out.flush()


class TextIteratorStreamer(TextStreamer):
    """Iterate over the text as it is made; run `generate` in another thread:

        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
        threading.Thread(target=model.generate, args=(ids,), kwargs={"streamer": streamer}).start()
        for piece in streamer: print(piece, end="")
    """

    _STOP = object()

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs: Any):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: queue.Queue = queue.Queue()
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self._STOP, timeout=self.timeout)

    def __iter__(self) -> TextIteratorStreamer:
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self._STOP:
            raise StopIteration
        return value


class TokenIteratorStreamer(BaseStreamer):
    """Iterate over the new token arrays [B] (the prompt is skipped)."""

    _STOP = object()

    def __init__(self, timeout: float | None = None):
        self.queue: queue.Queue = queue.Queue()
        self.timeout = timeout
        self._seen_prompt = False

    def put(self, value: Any) -> None:
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        self.queue.put(np.asarray(value), timeout=self.timeout)

    def end(self) -> None:
        self._seen_prompt = False
        self.queue.put(self._STOP, timeout=self.timeout)

    def __iter__(self) -> TokenIteratorStreamer:
        return self

    def __next__(self) -> np.ndarray:
        value = self.queue.get(timeout=self.timeout)
        if value is self._STOP:
            raise StopIteration
        return value

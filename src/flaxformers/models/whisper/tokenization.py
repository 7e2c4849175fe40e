"""Whisper's tokenizer: GPT-2's byte-level BPE plus the transcript prefix (start, language, task,
no-timestamps) and the decoding of timestamp tokens (`decode_with_timestamps`, `output_offsets`)."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from tokenizers import processors

from flaxformers.models.gpt2.tokenization import gpt2_tokenizer
from flaxformers.models.whisper.generation import TASKS, TO_LANGUAGE_CODE
from flaxformers.tokenizers import Tokenizer

START, PREVIOUS, NO_TIMESTAMPS = "<|startoftranscript|>", "<|startofprev|>", "<|notimestamps|>"
TIMESTAMP = re.compile(r"<\|(\d+\.\d+)\|>")


class WhisperTokenizer(Tokenizer):
    """A byte-level BPE tokenizer whose encodings start with Whisper's prefix and end with `<|endoftext|>`."""

    def __init__(self, backend: Any, *, language: str | None = None, task: str | None = None,
                 predict_timestamps: bool = False, **kwargs: Any):
        super().__init__(backend, **kwargs)
        self.set_prefix_tokens(language, task, predict_timestamps)

    @classmethod
    def wrap(cls, tokenizer: Tokenizer, config: dict[str, Any] | None = None, **options: Any) -> WhisperTokenizer:
        """A generic tokenizer (from tokenizer.json) as Whisper's, with `tokenizer_config.json`'s prefix settings."""
        config = config or {}
        settings = {k: options.pop(k, config.get(k)) for k in ("language", "task")}
        specials = {k: getattr(tokenizer, k) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        out = cls(tokenizer.backend, **settings, predict_timestamps=bool(config.get("predict_timestamps", False)),
                  **specials, padding_side=tokenizer.padding_side, model_max_length=tokenizer.model_max_length)
        out.uses_token_types = False
        return out

    # --- the prefix ------------------------------------------------------------------------------
    def set_prefix_tokens(self, language: str | None = None, task: str | None = None,
                          predict_timestamps: bool | None = None) -> None:
        """The tokens every encoding starts with (transformers' `set_prefix_tokens`)."""
        if task is not None and task not in TASKS:
            raise ValueError(f"task={task!r} is not supported; expected one of {TASKS}.")
        self.language = language if language is not None else getattr(self, "language", None)
        self.task = task if task is not None else getattr(self, "task", None)
        if predict_timestamps is not None:
            self.predict_timestamps = predict_timestamps
        prefix = self.prefix_tokens
        eos = self.eos_token or "<|endoftext|>"
        tokens = [(t, i) for t, i in zip(self.convert_ids_to_tokens(prefix), prefix)]
        head = " ".join(t for t, _ in tokens)
        self.backend.post_processor = processors.TemplateProcessing(
            single=f"{head} $A:0 {eos}:0", pair=f"{head} $A:0 $B:1 {eos}:1",
            special_tokens=[*tokens, (eos, self.backend.token_to_id(eos))])

    def _language_token(self, language: str) -> str:
        code = TO_LANGUAGE_CODE.get(language.lower(), language.lower())
        token = language if language.startswith("<|") else f"<|{code}|>"
        if self.backend.token_to_id(token) is None:
            raise ValueError(f"language={language!r}: this tokenizer has no {token} token; pass a language code, "
                             "name or token of its vocabulary.")
        return token

    @property
    def prefix_tokens(self) -> list[int]:
        tokens = [START]
        if self.language is not None:
            tokens.append(self._language_token(self.language))
        if self.task is not None:
            tokens.append(f"<|{self.task}|>")
        if not self.predict_timestamps:
            tokens.append(NO_TIMESTAMPS)
        return [self.backend.token_to_id(t) for t in tokens]

    def get_decoder_prompt_ids(self, task: str | None = None, language: str | None = None,
                               no_timestamps: bool = True) -> list[tuple[int, int]]:
        """4.57's `forced_decoder_ids` for that prompt: [(1, language), (2, task), (3, no-timestamps)]."""
        self.set_prefix_tokens(language=language, task=task, predict_timestamps=not no_timestamps)
        return list(enumerate(self.prefix_tokens[1:], start=1))

    # --- decoding --------------------------------------------------------------------------------
    @property
    def timestamp_begin(self) -> int:
        """The first timestamp token (`<|0.00|>`): the one after `<|notimestamps|>`."""
        return self.backend.token_to_id(NO_TIMESTAMPS) + 1

    def _strip_previous(self, ids: list[int]) -> list[int]:
        """Without the previous-text prompt (`<|startofprev|> ... <|startoftranscript|>`)."""
        previous, start = self.backend.token_to_id(PREVIOUS), self.backend.token_to_id(START)
        if ids and ids[0] == previous and start in ids:
            return ids[ids.index(start):]
        return ids

    def decode(self, ids: Any, skip_special_tokens: bool = False, output_offsets: bool = False,
               time_precision: float = 0.02, decode_with_timestamps: bool = False, **kwargs: Any) -> Any:
        """Text of `ids`; timestamps shown as `<|1.08|>` with `decode_with_timestamps`, and with
        `output_offsets` a dict of the text and its timestamped segments ({"text", "timestamp": (start, end)})."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        kept = self._strip_previous(ids) if skip_special_tokens else ids
        if decode_with_timestamps:
            text = self._decode_with_timestamps(kept, skip_special_tokens, time_precision)
        else:
            text = TIMESTAMP.sub("", super().decode(kept, skip_special_tokens=skip_special_tokens))
        if output_offsets:
            return {"text": text, "offsets": self._offsets(ids, time_precision)}
        return text

    def _decode_with_timestamps(self, ids: list[int], skip_special_tokens: bool, time_precision: float,
                                segment_size: int = 1500) -> str:
        """Text pieces between `<|t|>` marks; a timestamp going back starts a new 30 s window, whose times
        continue from the previous window's."""
        begin = self.timestamp_begin
        pieces: list[str | list[int]] = [[]]
        latest = before_latest = offset = 0.0
        for i, token in enumerate(ids):
            if token < begin:
                pieces[-1].append(token)
                continue
            time = (token - begin) * time_precision
            if time < latest:  # the next window
                single_ending = i >= 2 and not (ids[i - 1] >= begin and ids[i - 2] >= begin)
                if single_ending:
                    offset += time_precision * segment_size
                else:
                    latest = before_latest
                    offset += before_latest
                    pieces = pieces[:-2]
            before_latest, latest = latest, time
            pieces += [f"<|{time + offset:.2f}|>", []]
        return "".join(p if isinstance(p, str) else (super(WhisperTokenizer, self).decode(
            p, skip_special_tokens=skip_special_tokens) if p else "") for p in pieces)

    def _offsets(self, ids: list[int], time_precision: float, segment_size: int = 1500) -> list[dict[str, Any]]:
        """The timestamped segments of `ids`: text between a start and an end timestamp."""
        begin = self.timestamp_begin
        tokens = np.asarray(ids)
        is_time = tokens >= begin
        ends = list(np.where(is_time[:-1] & is_time[1:])[0] + 1)
        times = np.where(is_time)[0]
        if not ends and is_time.sum() <= 1:
            return []
        if times[-1] + 1 not in ends:
            ends.append(times[-1] + 1)
        out, last, latest, offset = [], times[0], 0, 0
        for end in ends:
            piece = tokens[last:end]
            if len(piece) > 1:
                start_pos, end_pos = int(piece[0]) - begin, int(piece[-1]) - begin
                if start_pos < latest:  # the next window
                    single_ending = last >= 2 and not (tokens[last - 2] >= begin and tokens[last - 1] >= begin)
                    offset += segment_size if single_ending else latest
                latest = end_pos
                text = TIMESTAMP.sub("", super().decode([int(t) for t in piece]))
                out.append({"text": text, "timestamp": (start_pos * time_precision + offset * time_precision,
                                                        end_pos * time_precision + offset * time_precision)})
            last = end
        return out

    def _decode_asr(self, model_outputs: list[dict[str, Any]], *, return_timestamps: bool, return_language: bool,
                    time_precision: float, segment_size: int = 1500) -> tuple[str, dict[str, Any]]:
        """The ASR pipeline's text and chunks of whole (unstrided) outputs, as transformers' pipeline makes
        them: the text between two timestamps is a chunk, decoded on its own; a timestamp going back starts
        the next window, whose times continue from the last segment's end (or one window on, after a
        single ending)."""
        if return_language:
            raise NotImplementedError("return_language is not supported; read the language token of the sequence.")
        begin = self.timestamp_begin
        special = {i for i, token in self.backend.get_added_tokens_decoder().items() if token.special}
        chunks: list[dict[str, Any]] = []
        for output in model_outputs:
            ids = self._strip_previous([int(t) for t in np.asarray(output["tokens"]).reshape(-1)])
            chunk, tokens = [None, None], []
            latest = before_latest = shift = 0.0
            for i, token in enumerate(ids):
                if token in special:
                    continue
                if token < begin:
                    tokens.append(token)
                    continue
                time = (token - begin) * time_precision
                if time < latest:  # the next window
                    if i >= 2 and not (ids[i - 1] >= begin and ids[i - 2] >= begin):  # after a single ending
                        shift += time_precision * segment_size
                    else:
                        latest = before_latest
                        shift += before_latest
                before_latest, latest = latest, time
                time = round(time + shift, 2)
                if chunk[0] is None:
                    chunk[0] = time
                elif time != chunk[0]:
                    chunks.append({"timestamp": (chunk[0], time), "text": self.decode(tokens)})
                    chunk, tokens = [None, None], []
            if tokens:
                chunks.append({"timestamp": tuple(chunk), "text": self.decode(tokens)})
        text = "".join(c["text"] for c in chunks)
        return text, ({"chunks": chunks} if return_timestamps else {})

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, **kwargs: Any) -> list[Any]:
        return [self.decode(s, skip_special_tokens=skip_special_tokens, **kwargs) for s in np.asarray(sequences)]


def whisper_tokenizer(vocab_json: str | os.PathLike, merges_txt: str | os.PathLike,
                      tokenizer_config: dict[str, Any] | None = None, **kwargs: Any) -> WhisperTokenizer:
    """From the legacy `vocab.json` + `merges.txt` (+ the added tokens `tokenizer_config.json` lists)."""
    base = gpt2_tokenizer(vocab_json, merges_txt, tokenizer_config, **kwargs)
    added = (tokenizer_config or {}).get("added_tokens_decoder", {})
    for _, token in sorted(added.items(), key=lambda kv: int(kv[0])):
        base.backend.add_special_tokens([token["content"]]) if token.get("special") else \
            base.backend.add_tokens([token["content"]])
    return WhisperTokenizer.wrap(base, tokenizer_config)


def adapt_whisper_tokenizer(tokenizer: Tokenizer, tokenizer_config: dict[str, Any],
                            **options: Any) -> WhisperTokenizer:
    return WhisperTokenizer.wrap(tokenizer, tokenizer_config, **options)


__all__ = ["WhisperTokenizer", "adapt_whisper_tokenizer", "whisper_tokenizer"]

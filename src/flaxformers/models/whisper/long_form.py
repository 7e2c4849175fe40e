"""Whisper's sequential transcription, as transformers 5's `WhisperGenerationMixin.generate` does it.

The audio's features are cut into windows of `num_segment_frames` (30 s). Each window is decoded with
timestamps through the generation engine; its tokens split into segments at each pair of timestamps, and
the next window starts at the last closed segment's end (or after the window, when the last timestamp is
single: no speech after it). A window whose decoding looks bad (compression ratio too high, average
log-probability too low) is decoded again at the next temperature; one that is probably silence (the
`<|nospeech|>` probability above `no_speech_threshold` and a low log-probability) is skipped. The segment
bookkeeping is numpy on the host; only the engine's decode runs on the device.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flaxformers.outputs import output_class

FlaxWhisperGenerateOutput = output_class("FlaxWhisperGenerateOutput", "sequences", "segments")

# decode(features [b, mel, frames], prompt [b, P], its mask [b, P] (left padding) or None, config) -> (new
# tokens [b, N], each new token's log-probability [b, N], and P(<|nospeech|>) after the start token [b]; both
# None without logprob_threshold)
DecodeWindow = Callable[[np.ndarray, np.ndarray, np.ndarray | None, Any],
                        tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]


@dataclass
class LongFormSettings:
    """What the loop reads, resolved from generate()'s arguments and the generation config."""

    temperatures: tuple[float | None, ...]
    compression_ratio_threshold: float | None
    logprob_threshold: float | None
    no_speech_threshold: float | None
    condition_on_prev_tokens: bool
    prompt_ids: np.ndarray | None
    prompt_segment: np.ndarray | None  # the prompt as the first segment: without the config's <|startofprev|>
    prompt_condition_type: str
    num_segment_frames: int
    input_stride: int
    time_precision: float
    time_precision_features: float
    timestamp_begin: int
    max_target_positions: int
    vocab_size: int


def compression_ratio(tokens: np.ndarray, vocab_size: int) -> float:
    """The tokens' bytes over their zlib-compressed bytes (repetitive text compresses well)."""
    width = int(math.log2(vocab_size) / 8) + 1
    raw = b"".join(int(t).to_bytes(width, "little") for t in tokens)
    return len(raw) / len(zlib.compress(raw))


def window_features(features: np.ndarray, rows: list[int], seek: np.ndarray, frames: np.ndarray,
                    num_segment_frames: int) -> np.ndarray:
    """Each row's window [b, mel, num_segment_frames]: from `seek`, `frames` long, zero-padded."""
    out = np.zeros((len(rows), features.shape[1], num_segment_frames), features.dtype)
    for i, row in enumerate(rows):
        out[i, :, :frames[row]] = features[row, :, seek[row]:seek[row] + frames[row]]
    return out


def split_segments(tokens: np.ndarray, time_offset: float, num_frames: int, s: LongFormSettings
                   ) -> tuple[list[dict[str, Any]], int]:
    """A window's tokens (eos removed) as segments with times, and how many frames to seek forward."""
    tb = s.timestamp_begin
    is_timestamp = [bool(t >= tb) for t in tokens]
    single_ending = is_timestamp[-2:] == [False, True]  # no speech after the last timestamp
    cuts = [i + 1 for i in range(len(tokens) - 1) if is_timestamp[i] and is_timestamp[i + 1]]
    if not cuts:  # one segment: the whole window, ending at its last timestamp (or the window's end)
        end = int(num_frames * s.time_precision_features / s.time_precision)
        stamps = [i for i, flag in enumerate(is_timestamp) if flag]
        if stamps and tokens[stamps[-1]] != tb:
            end = float(tokens[stamps[-1]] - tb)
        return [_segment(time_offset, time_offset + end * s.time_precision, tokens)], num_frames
    if single_ending:
        cuts.append(len(tokens))
    else:
        cuts[-1] += 1  # the last segment keeps both timestamps (it was not a single ending)
    segments, last = [], 0
    for i, cut in enumerate(cuts):
        piece = tokens[last:cut]
        end_index = -2 if i == len(cuts) - 1 and not single_ending else -1
        segments.append(_segment(time_offset + float(piece[0] - tb) * s.time_precision,
                                 time_offset + float(piece[end_index] - tb) * s.time_precision, piece))
        last = cut
    # after a closed segment the audio may go on: seek to its end and decode from there
    offset = num_frames if single_ending else int(tokens[last - 2] - tb) * s.input_stride
    return segments, offset


def _segment(start: float, end: float, tokens: np.ndarray) -> dict[str, Any]:
    return {"start": start, "end": end, "tokens": np.asarray(tokens)}


def previous_tokens(segments: list[dict[str, Any]], s: LongFormSettings, prev_sot: int | None) -> list[int]:
    """The tokens that condition the next window: `<|startofprev|>` (or the prompt, with
    prompt_condition_type="all-segments"), then the last max_target_positions // 2 - 1 decoded tokens (a
    segment's closing double timestamp counted once)."""
    tokens: list[int] = []
    for segment in segments:
        piece = [int(t) for t in segment["tokens"]]
        if len(piece) > 2 and piece[-2] >= s.timestamp_begin:
            piece = piece[:-1]
        tokens += piece
    tokens = tokens[-(s.max_target_positions // 2 - 1):]
    if s.prompt_ids is not None and s.prompt_condition_type == "all-segments":
        return [int(t) for t in s.prompt_ids] + tokens
    return ([prev_sot] if prev_sot is not None else []) + tokens


def decoder_prompts(init: np.ndarray, rows: list[int], segments: list[list[dict[str, Any]]],
                    condition: list[bool], s: LongFormSettings, prev_sot: int | None, pad: int
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """The window's decoder prompts [b, P]: the previous text (when conditioning; left-padded with `pad`
    to the longest, with the mask transformers gives it: not `pad`) or the prompt ids, then the start,
    language, task tokens."""
    if any(condition) and segments[0]:  # transformers looks at the first row's segments
        prefixes = [previous_tokens(segments[r] if condition[r] else [], s, prev_sot) for r in rows]
        width = max(len(p) for p in prefixes)
        padded = np.asarray([[pad] * (width - len(p)) + p for p in prefixes], np.int32).reshape(len(rows), width)
        prompt = np.concatenate([padded, init[rows]], axis=1).astype(np.int32)
        real = np.arange(prompt.shape[1])[None] >= np.asarray([width - len(p) for p in prefixes])[:, None]
        return prompt, (real & (prompt != pad)).astype(np.int32)  # transformers masks every `pad` token
    if s.prompt_ids is not None:
        return np.concatenate([np.tile(s.prompt_ids[None], (len(rows), 1)), init[rows]], axis=1).astype(np.int32), None
    return init[rows], None


def set_length_budget(config: Any, prompt_len: int, max_target_positions: int) -> None:
    """transformers 5 grows `max_length` by the prompt each window (capped by the decoder's positions) when
    no `max_new_tokens` is set; with it, the prompt and the new tokens must fit the positions."""
    if config.max_new_tokens is not None:
        if config.max_new_tokens + prompt_len > max_target_positions:
            raise ValueError(
                f"The decoder prompt ({prompt_len} tokens: start, language, task, prompt and previous tokens) plus "
                f"max_new_tokens={config.max_new_tokens} exceeds max_target_positions={max_target_positions}; "
                "lower max_new_tokens or shorten prompt_ids.")
    elif config.max_length is not None:
        config.max_length = min(config.max_length + min(max_target_positions // 2 - 1, prompt_len),
                                max_target_positions)


def strip_generated(new: np.ndarray, eos: set[int], pad: int | None) -> tuple[np.ndarray, int]:
    """A row's generated tokens without the padding and eos, and how many tokens the log-probability
    averages over (the eos counts, as in Whisper)."""
    row = [int(t) for t in new]
    for i, token in enumerate(row):
        if token in eos:
            return np.asarray(row[:i], np.int64), i + 1
    while row and pad is not None and row[-1] == pad:
        row.pop()
    return np.asarray(row, np.int64), len(row)


def decode_with_fallback(decode: DecodeWindow, window: np.ndarray, prompt: np.ndarray, mask: np.ndarray | None,
                         config: Any, s: LongFormSettings, eos: set[int], width: int
                         ) -> tuple[list[np.ndarray], list[bool], list[bool]]:
    """Decode the window at each temperature until every row passes the thresholds: per row its tokens,
    whether it is skipped as silence, and whether the next window may condition on it. Each decode has
    `width` rows (the batch's), so one compiled loop serves every window."""
    rows = list(range(len(window)))
    tokens: list[np.ndarray] = [np.zeros(0, np.int64)] * len(rows)
    skip, low_temperature = [False] * len(rows), [True] * len(rows)
    for attempt, temperature in enumerate(s.temperatures):
        config.do_sample = temperature is not None and temperature > 0.0
        config.temperature = temperature if config.do_sample else 1.0
        if config.do_sample:
            config.num_beams = 1  # and it stays 1 for the next windows, as in transformers
        new, logprobs, no_speech = decode(_pad_rows(window[rows], width), _pad_rows(prompt[rows], width),
                                          None if mask is None else _pad_rows(mask[rows], width), config)
        retry = []
        for i, row in enumerate(rows):
            tokens[row], counted = strip_generated(new[i], eos, config.pad_token_id)
            avg = None if logprobs is None else _average_logprob(logprobs[i], counted)
            fallback, skip[row] = needs_fallback(tokens[row], avg, None if no_speech is None else
                                                 float(no_speech[i]), s)
            low_temperature[row] = temperature is None or temperature < 0.5
            if fallback:
                retry.append(row)
        rows = retry
        if not rows or attempt == len(s.temperatures) - 1:
            break
    return tokens, skip, low_temperature


def _average_logprob(logprobs: np.ndarray, counted: int) -> float:
    """The mean of the first `counted` tokens' log-probabilities (the eos included, as in Whisper)."""
    return float(np.sum(logprobs[:counted], dtype=np.float64)) / max(counted, 1)


def needs_fallback(tokens: np.ndarray, avg_logprob: float | None, no_speech_prob: float | None,
                   s: LongFormSettings) -> tuple[bool, bool]:
    """(decode again at the next temperature, skip the window as silence)."""
    fallback = s.compression_ratio_threshold is not None and \
        compression_ratio(tokens, s.vocab_size) > s.compression_ratio_threshold
    low = avg_logprob is not None and s.logprob_threshold is not None and avg_logprob < s.logprob_threshold
    fallback |= low
    if no_speech_prob is not None and s.no_speech_threshold is not None and low and \
            no_speech_prob > s.no_speech_threshold:
        return False, True
    return fallback, False


def _pad_rows(array: np.ndarray, batch: int) -> np.ndarray:
    """`array` with copies of its first row up to `batch` rows: one compiled shape for every window."""
    return np.concatenate([array, np.repeat(array[:1], batch - len(array), axis=0)]) if len(array) < batch else array


def transcribe(features: np.ndarray, max_frames: np.ndarray, init: np.ndarray, config: Any, s: LongFormSettings,
               decode: DecodeWindow, prev_sot: int | None, eos: set[int],
               on_segments: Callable[[int, list[dict[str, Any]]], None] | None = None) -> list[list[dict[str, Any]]]:
    """Each row's segments, window after window (transformers 5's loop; `config` is changed as it changes
    transformers' generation config). `on_segments(row, segments)` gets each window's new segments, final."""
    batch = len(features)
    seek = np.zeros(batch, np.int64)
    first = [{"tokens": s.prompt_segment}] if _prompt_first(s) else []
    segments: list[list[dict[str, Any]]] = [list(first) for _ in range(batch)]
    condition = [s.condition_on_prev_tokens] * batch
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    while np.any(seek < max_frames):
        rows = [r for r in range(batch) if seek[r] < max_frames[r]]
        frames = np.minimum(max_frames - seek, s.num_segment_frames)
        window = window_features(features, rows, seek, frames, s.num_segment_frames)
        prompt, mask = decoder_prompts(init, rows, segments, condition, s, prev_sot, pad)
        set_length_budget(config, prompt.shape[1], s.max_target_positions)
        tokens, skip, low_temperature = decode_with_fallback(decode, window, prompt, mask, config, s, eos, batch)
        for i, row in enumerate(rows):
            condition[row] = s.condition_on_prev_tokens and low_temperature[i]
            if skip[i]:
                seek[row] += frames[row]
                continue
            offset = float(seek[row]) * s.time_precision / s.input_stride
            found, step = split_segments(tokens[i], offset, int(frames[row]), s)
            seek[row] += step
            segments[row] += found
            if on_segments is not None:
                on_segments(row, found)
    return [row[1:] for row in segments] if first else segments


def _prompt_first(s: LongFormSettings) -> bool:
    return s.prompt_ids is not None and s.prompt_condition_type == "first-segment"


def join_segments(segments: list[list[dict[str, Any]]], pad: int) -> np.ndarray:
    """Each row's segment tokens end to end, right-padded with `pad` to the longest row [B, T]."""
    rows = [np.concatenate([np.asarray(seg["tokens"], np.int64) for seg in row]) if row else np.zeros(0, np.int64)
            for row in segments]
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), pad, np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


__all__ = ["FlaxWhisperGenerateOutput", "LongFormSettings", "compression_ratio", "join_segments", "split_segments",
           "transcribe"]

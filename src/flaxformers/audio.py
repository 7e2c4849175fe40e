"""Audio inputs: WAV files read and resampled to the model's rate, arrays and `{"array", "sampling_rate"}`
dicts (the feature extractors themselves: `flaxformers.processors.AutoFeatureExtractor`)."""

from __future__ import annotations

import os
from math import gcd
from typing import Any

import numpy as np


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """`audio` [samples] at `to_rate` (polyphase filtering, scipy's `resample_poly`)."""
    if from_rate == to_rate:
        return audio.astype(np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(from_rate), int(to_rate))
    return resample_poly(audio, to_rate // g, from_rate // g).astype(np.float32)


def load_audio(path: str | os.PathLike, sampling_rate: int = 16000) -> np.ndarray:
    """A WAV file as mono float32 in [-1, 1] at `sampling_rate`."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(os.fspath(path))
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)!r} is not a readable WAV file ({e}); convert it to WAV (PCM or float), "
                         "e.g. `ffmpeg -i input -ar 16000 -ac 1 out.wav`.") from None
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    data = data.astype(np.float32)
    if data.ndim == 2:  # [samples, channels] -> mono
        data = data.mean(axis=1)
    return resample(data, rate, sampling_rate)


def audio_input(item: Any, sampling_rate: int) -> np.ndarray:
    """A pipeline's audio input as a waveform at `sampling_rate`: a path, an array (already at that rate), or
    a dict with the array ("array" or "raw") and its "sampling_rate"."""
    if isinstance(item, str | os.PathLike):
        return load_audio(item, sampling_rate)
    if isinstance(item, dict):
        array = item.get("array", item.get("raw"))
        if array is None or "sampling_rate" not in item:
            raise ValueError("An audio dict needs the waveform under 'array' (or 'raw') and its 'sampling_rate'.")
        return resample(np.asarray(array, np.float32), int(item["sampling_rate"]), sampling_rate)
    array = np.asarray(item, np.float32)
    if array.ndim != 1:
        raise ValueError(f"An audio array must be one mono waveform [samples], got shape {array.shape}.")
    return array


__all__ = ["audio_input", "load_audio", "resample"]

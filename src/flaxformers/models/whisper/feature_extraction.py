"""WhisperFeatureExtractor: raw 16 kHz audio -> Whisper's log-mel spectrogram, on numpy.

The audio is padded (or truncated) to `chunk_length` seconds, framed by a centred, reflect-padded STFT
(periodic Hann window of `n_fft`, hop `hop_length`), its power spectrum projected on Slaney-normalised
mel filters, then log10, floored at 8 below its maximum and scaled as `(x + 4) / 4`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from flaxformers.models.wav2vec2.feature_extraction import zero_mean_unit_var

PREPROCESSOR_CONFIG_NAME = "preprocessor_config.json"


def _hertz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, np.float64)
    logstep = 27.0 / np.log(6.4)
    return np.where(freq < 1000.0, 3.0 * freq / 200.0, 15.0 + np.log(np.maximum(freq, 1e-10) / 1000.0) * logstep)


def _mel_to_hertz(mels: np.ndarray) -> np.ndarray:
    logstep = np.log(6.4) / 27.0
    return np.where(mels < 15.0, 200.0 * mels / 3.0, 1000.0 * np.exp(logstep * (mels - 15.0)))


def slaney_mel_filters(num_frequency_bins: int, num_mel_filters: int, sampling_rate: int,
                       min_frequency: float = 0.0, max_frequency: float = 8000.0) -> np.ndarray:
    """Triangular mel filters [frequency bins, mel], each scaled to unit area (Slaney's norm)."""
    mels = np.linspace(_hertz_to_mel(min_frequency), _hertz_to_mel(max_frequency), num_mel_filters + 2)
    edges = _mel_to_hertz(mels)  # [mel + 2] filter corners in Hz
    fft_freqs = np.linspace(0, sampling_rate // 2, num_frequency_bins)
    slopes = edges[None, :] - fft_freqs[:, None]  # [F, mel + 2]
    widths = np.diff(edges)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


def log_mel_spectrogram(audio: np.ndarray, mel_filters: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Whisper's log-mel features [mel, frames] of one padded waveform [samples]."""
    padded = np.pad(audio.astype(np.float64), n_fft // 2, mode="reflect")
    frames = 1 + (len(padded) - n_fft) // hop_length
    index = np.arange(n_fft)[None, :] + hop_length * np.arange(frames)[:, None]  # [T, n_fft]
    window = np.hanning(n_fft + 1)[:-1]  # periodic
    power = np.abs(np.fft.rfft(padded[index] * window, axis=-1)) ** 2  # [T, n_fft // 2 + 1]
    log_spec = np.log10(np.maximum(power[:-1] @ mel_filters, 1e-10)).T  # [mel, T - 1]: the last frame is dropped
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


class WhisperFeatureExtractor:
    """transformers' WhisperFeatureExtractor (its `preprocessor_config.json` keys and call), without torch."""

    model_input_names = ("input_features",)

    def __init__(self, feature_size: int = 80, sampling_rate: int = 16000, hop_length: int = 160,
                 chunk_length: int = 30, n_fft: int = 400, padding_value: float = 0.0,
                 return_attention_mask: bool = False, padding_side: str = "right", **kwargs: Any):
        self.feature_size, self.sampling_rate, self.hop_length = feature_size, sampling_rate, hop_length
        self.chunk_length, self.n_fft, self.padding_value = chunk_length, n_fft, padding_value
        self.return_attention_mask, self.padding_side = return_attention_mask, padding_side
        self.n_samples = chunk_length * sampling_rate
        self.nb_max_frames = self.n_samples // hop_length
        self.mel_filters = slaney_mel_filters(1 + n_fft // 2, feature_size, sampling_rate)
        self.extra = {k: v for k, v in kwargs.items() if k not in ("mel_filters", "feature_extractor_type")}

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> WhisperFeatureExtractor:
        file = os.path.join(path, PREPROCESSOR_CONFIG_NAME)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"{file} not found: pass the directory of a Whisper checkpoint that holds "
                                    f"{PREPROCESSOR_CONFIG_NAME}.")
        with open(file, encoding="utf-8") as f:
            return cls(**{**json.load(f), **kwargs})

    def to_dict(self) -> dict[str, Any]:
        return {"feature_extractor_type": type(self).__name__, "feature_size": self.feature_size,
                "sampling_rate": self.sampling_rate, "hop_length": self.hop_length,
                "chunk_length": self.chunk_length, "n_fft": self.n_fft, "n_samples": self.n_samples,
                "nb_max_frames": self.nb_max_frames, "padding_value": self.padding_value,
                "return_attention_mask": self.return_attention_mask, "padding_side": self.padding_side, **self.extra}

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, PREPROCESSOR_CONFIG_NAME), "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)

    def __call__(self, raw_speech: Any, sampling_rate: int | None = None, padding: str = "max_length",
                 max_length: int | None = None, truncation: bool = True, return_attention_mask: bool | None = None,
                 do_normalize: bool | None = None, return_tensors: str | None = None, **kwargs: Any) -> dict:
        """`input_features` [B, feature_size, frames] of one waveform or a batch of them (mono, float)."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(f"sampling_rate={sampling_rate}, but this feature extractor expects audio sampled at "
                             f"{self.sampling_rate} Hz; resample it first.")
        batched = (isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1) or (
            isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0
            and isinstance(raw_speech[0], (np.ndarray, list, tuple)))
        if isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 2:
            raise ValueError(f"raw_speech has shape {raw_speech.shape}; expected mono audio [samples] or [batch, "
                             "samples].")
        waves = [np.asarray(w, np.float32) for w in raw_speech] if batched else [np.asarray(raw_speech, np.float32)]
        if padding not in ("max_length", "longest", True, False):
            raise ValueError(f"padding={padding!r} is not supported; expected 'max_length' or 'longest'.")
        if truncation:  # to max_length (30 s), whatever the padding
            waves = [w[:max_length or self.n_samples] for w in waves]
        length = max(len(w) for w in waves)
        if padding != "longest":
            length = max(length, max_length or self.n_samples)
        mask = np.zeros((len(waves), length), np.int32)
        audio = np.full((len(waves), length), self.padding_value, np.float32)
        for i, w in enumerate(waves):
            audio[i, :len(w)], mask[i, :len(w)] = w, 1
        if do_normalize:  # zero mean and unit variance over each waveform's real samples
            audio = zero_mean_unit_var(audio, [len(w) for w in waves], self.padding_value)
        features = np.stack([log_mel_spectrogram(a, self.mel_filters, self.n_fft, self.hop_length) for a in audio])
        out: dict[str, Any] = {"input_features": features}
        if return_attention_mask if return_attention_mask is not None else self.return_attention_mask:
            frames = mask[:, ::self.hop_length]
            out["attention_mask"] = frames[:, :-1] if length % self.hop_length else frames
        return out


__all__ = ["WhisperFeatureExtractor", "log_mel_spectrogram", "slaney_mel_filters"]

"""Wav2Vec2FeatureExtractor: raw audio padded into a batch, each waveform normalised to zero mean and unit
variance (over its real samples when the attention mask is returned), on numpy."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

PREPROCESSOR_CONFIG_NAME = "preprocessor_config.json"


def zero_mean_unit_var(audio: np.ndarray, lengths: list[int] | None, padding_value: float = 0.0) -> np.ndarray:
    """Each row [B, samples] normalised over its first `lengths[i]` samples (all of them when None)."""
    out = np.empty_like(audio)
    for i, row in enumerate(audio):
        n = len(row) if lengths is None else lengths[i]
        out[i] = (row - row[:n].mean()) / np.sqrt(row[:n].var() + 1e-7)
        out[i, n:] = padding_value
    return out


class Wav2Vec2FeatureExtractor:
    """transformers' Wav2Vec2FeatureExtractor (its `preprocessor_config.json` keys and call), without torch."""

    model_input_names = ("input_values", "attention_mask")

    def __init__(self, feature_size: int = 1, sampling_rate: int = 16000, padding_value: float = 0.0,
                 return_attention_mask: bool = False, do_normalize: bool = True, padding_side: str = "right",
                 **kwargs: Any):
        self.feature_size, self.sampling_rate, self.padding_value = feature_size, sampling_rate, padding_value
        self.return_attention_mask, self.do_normalize, self.padding_side = return_attention_mask, do_normalize, padding_side
        self.extra = {k: v for k, v in kwargs.items() if k != "feature_extractor_type"}

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> Wav2Vec2FeatureExtractor:
        file = os.path.join(path, PREPROCESSOR_CONFIG_NAME)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"{file} not found: pass the directory of a checkpoint that holds "
                                    f"{PREPROCESSOR_CONFIG_NAME}.")
        with open(file, encoding="utf-8") as f:
            return cls(**{**json.load(f), **kwargs})

    def __call__(self, raw_speech: Any, sampling_rate: int | None = None, padding: bool | str = True,
                 max_length: int | None = None, truncation: bool = False, return_attention_mask: bool | None = None,
                 return_tensors: str | None = None, **kwargs: Any) -> dict:
        """`input_values` [B, samples] (and `attention_mask`) of one waveform or a batch of them."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(f"sampling_rate={sampling_rate}, but this feature extractor expects audio sampled at "
                             f"{self.sampling_rate} Hz; resample it first.")
        batched = (isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1) or (
            isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0
            and isinstance(raw_speech[0], (np.ndarray, list, tuple)))
        waves = [np.asarray(w, np.float32) for w in raw_speech] if batched else [np.asarray(raw_speech, np.float32)]
        if truncation and max_length is not None:
            waves = [w[:max_length] for w in waves]
        length = max_length if padding == "max_length" and max_length else max(len(w) for w in waves)
        if padding is False and len({len(w) for w in waves}) > 1:
            raise ValueError("The waveforms differ in length; pass padding=True to batch them.")
        audio = np.full((len(waves), length), self.padding_value, np.float32)
        mask = np.zeros((len(waves), length), np.int32)
        for i, w in enumerate(waves):
            audio[i, :len(w)], mask[i, :len(w)] = w, 1
        with_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        if self.do_normalize:  # without the mask transformers normalises over the padding too
            audio = zero_mean_unit_var(audio, [len(w) for w in waves] if with_mask else None, self.padding_value)
        return {"input_values": audio, **({"attention_mask": mask} if with_mask else {})}


__all__ = ["Wav2Vec2FeatureExtractor", "zero_mean_unit_var"]

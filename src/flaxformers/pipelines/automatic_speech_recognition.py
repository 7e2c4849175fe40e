"""`pipeline("automatic-speech-recognition")`: audio to text with a speech encoder-decoder (generate; with
`return_timestamps=True` the timestamped chunks) or a CTC model (greedy per-frame decoding)."""

from __future__ import annotations

from typing import Any

import numpy as np

from flaxformers.audio import audio_input
from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Pipeline, map_batched, with_generation_defaults
from flaxformers.processors import AutoFeatureExtractor

# transformers 5's defaults for what the model's generation config leaves unset (5 beams, as OpenAI's Whisper)
GENERATION_DEFAULTS = {"max_new_tokens": 256, "num_beams": 5}


class AutomaticSpeechRecognitionPipeline(Pipeline):
    task = "automatic-speech-recognition"

    def __init__(self, model: Any, tokenizer: Any, *, feature_extractor: Any = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        if feature_extractor is None:
            raise ValueError("The automatic-speech-recognition pipeline needs a feature extractor: pass a model "
                             "directory with preprocessor_config.json, or feature_extractor=.")
        self.feature_extractor = feature_extractor
        super().__init__(model, tokenizer, batch_size=batch_size, **options)

    def options(self, return_timestamps: bool | None = None, generate_kwargs: dict | None = None,
                max_new_tokens: int | None = None) -> dict[str, Any]:
        return {"return_timestamps": return_timestamps, "generate_kwargs": generate_kwargs,
                "max_new_tokens": max_new_tokens}

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        options, batch_size = self._call_options(kwargs)
        single = not isinstance(inputs, list | tuple)
        out = map_batched(lambda batch: self._transcribe(batch, options), [inputs] if single else inputs, batch_size)
        return out[0] if single else out

    def _transcribe(self, batch: list[Any], options: dict[str, Any]) -> list[dict[str, Any]]:
        rate = self.feature_extractor.sampling_rate
        audio = [audio_input(item, rate) for item in batch]
        if type(self.model).can_generate():
            return self._generate(audio, options)
        return self._ctc(audio)

    def _generate(self, audio: list[np.ndarray], options: dict[str, Any]) -> list[dict[str, Any]]:
        settings = dict(options.get("generate_kwargs") or {})
        if options.get("max_new_tokens") is not None:
            settings["max_new_tokens"] = options["max_new_tokens"]
        timestamps = bool(options.get("return_timestamps"))
        if timestamps:
            settings["return_timestamps"] = True
        settings = with_generation_defaults(settings, GENERATION_DEFAULTS, self.model, self.tokenizer)
        # Each waveform's features alone, batched with those of the same shape (Whisper's fixed 30 s; raw
        # audio of one length): padding raw audio would change what its encoder's convolutions see at the end.
        name = self.feature_extractor.model_input_names[0]
        features = [self._features(wave) for wave in audio]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, feature in enumerate(features):
            groups.setdefault(np.shape(feature[name]), []).append(i)
        out: list[dict[str, Any]] = [{}] * len(audio)
        for rows in groups.values():
            batch = {key: np.concatenate([features[i][key] for i in rows]) for key in features[rows[0]]}
            source = batch.pop(name)
            mask = {"attention_mask": batch["attention_mask"]} if "attention_mask" in batch else {}
            sequences = np.asarray(self.model.generate(source, **mask, **settings).sequences)
            for i, row in zip(rows, sequences):
                out[i] = self._decoded(row, timestamps)
        return out

    def _features(self, wave: np.ndarray) -> dict[str, Any]:
        """The feature extractor's inputs; Whisper's audio longer than one window (30 s) whole, with its frame
        mask, for sequential long-form generation (as transformers 5's pipeline makes them)."""
        window = getattr(self.feature_extractor, "n_samples", None)
        whole = {"truncation": False, "padding": "longest", "return_attention_mask": True}
        return self.feature_extractor(wave, sampling_rate=self.feature_extractor.sampling_rate,
                                      **(whole if window is not None and len(wave) > window else {}))

    def _decoded(self, row: np.ndarray, timestamps: bool) -> dict[str, Any]:
        if hasattr(self.tokenizer, "_decode_asr"):  # Whisper: the chunks between timestamps, decoded one by one
            seconds = self.feature_extractor.chunk_length / self.model.config.max_source_positions
            text, chunks = self.tokenizer._decode_asr([{"tokens": row}], return_timestamps=timestamps,
                                                      return_language=False, time_precision=seconds)
            return {"text": text, **chunks}
        return {"text": self.tokenizer.decode(row, skip_special_tokens=True)}

    def _ctc(self, audio: list[np.ndarray]) -> list[dict[str, Any]]:
        """One waveform at a time, as transformers does: padding would change what a group-normed feature
        encoder sees."""
        out = []
        for wave in audio:
            inputs = self.feature_extractor(wave, sampling_rate=self.feature_extractor.sampling_rate)
            logits = np.asarray(self.model(inputs["input_values"], attention_mask=inputs.get("attention_mask")).logits)
            out.append({"text": self.tokenizer.decode(np.argmax(logits[0], axis=-1))})
        return out


def load_feature_extractor(model: Any, feature_extractor: Any) -> Any:
    """A feature extractor given, or the one of the model's directory."""
    import os

    if feature_extractor is None and isinstance(model, str | os.PathLike):
        feature_extractor = model
    if isinstance(feature_extractor, str | os.PathLike):
        return AutoFeatureExtractor.from_pretrained(feature_extractor)
    return feature_extractor


__all__ = ["AutomaticSpeechRecognitionPipeline", "load_feature_extractor"]

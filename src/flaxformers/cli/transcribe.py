"""`flaxformers transcribe --model PATH AUDIO.wav`: speech to text, streamed to stdout as it is decoded.

A Whisper checkpoint transcribes (or, with --task translate, translates to English) each window of
the audio in turn (the feature extractor's `chunk_length`, 30 s), streaming each window's text;
--timestamps prints the timestamped segments instead. A CTC checkpoint (Wav2Vec2ForCTC) prints its
greedy transcription. The audio is a WAV file, resampled to the model's rate.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("transcribe", help="transcribe speech (streamed)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", help="WAV file")
    p.add_argument("--model", required=True, help="speech model directory (Whisper or a CTC model)")
    p.add_argument("--language", default=None, help="spoken language: code, name or token (default: detected)")
    p.add_argument("--task", choices=("transcribe", "translate"), default=None, help="translate: into English")
    p.add_argument("--timestamps", action="store_true", help="print timestamped segments")
    p.add_argument("--max-new-tokens", type=int, default=None, help="tokens per window (default: the model's)")
    p.set_defaults(func=run)


def _load(path: str) -> tuple[Any, Any, Any]:
    from flaxformers.auto import FlaxAutoModelForCTC, FlaxAutoModelForSpeechSeq2Seq
    from flaxformers.pipelines import _architecture_suffix
    from flaxformers.processors import AutoFeatureExtractor
    from flaxformers.tokenizers import AutoTokenizer

    auto = FlaxAutoModelForCTC if _architecture_suffix(path) == "ForCTC" else FlaxAutoModelForSpeechSeq2Seq
    return auto.from_pretrained(path), AutoTokenizer.from_pretrained(path), AutoFeatureExtractor.from_pretrained(path)


def run(args: argparse.Namespace) -> int:
    from flaxformers.audio import load_audio
    from flaxformers.generation.streamers import TextStreamer

    model, tokenizer, features = _load(args.model)
    audio = load_audio(args.audio, features.sampling_rate)
    if not type(model).can_generate():  # CTC: one pass
        from flaxformers.pipelines.automatic_speech_recognition import AutomaticSpeechRecognitionPipeline

        print(AutomaticSpeechRecognitionPipeline(model, tokenizer, feature_extractor=features)(audio)["text"])
        return 0
    settings: dict[str, Any] = {k: v for k, v in (("language", args.language), ("task", args.task),
                                                  ("max_new_tokens", args.max_new_tokens)) if v is not None}
    window = features.n_samples
    for start in range(0, max(len(audio), 1), window):
        inputs = features(audio[start:start + window], sampling_rate=features.sampling_rate)["input_features"]
        if args.timestamps:
            row = np.asarray(model.generate(inputs, return_timestamps=True, **settings).sequences)[0]
            offset = start / features.sampling_rate
            for chunk in tokenizer.decode(row, output_offsets=True)["offsets"]:
                begin, end = (t + offset for t in chunk["timestamp"])
                print(f"[{begin:.2f} -> {end:.2f}]{chunk['text']}", flush=True)
            continue
        streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        model.generate(inputs, streamer=streamer, **settings)
    sys.stdout.flush()
    return 0

"""`flaxformers transcribe --model PATH AUDIO.wav`: speech to text, streamed to stdout as it is decoded.

A Whisper checkpoint transcribes (or, with --task translate, translates to English) the audio as
transformers 5 does: one 30 s window streamed token by token, longer audio window after window from the
last segment's end (sequential long form), each window's text streamed once its segments are final;
--timestamps prints the timestamped segments instead. A CTC checkpoint (Wav2Vec2ForCTC) prints its
greedy transcription. The audio is a WAV file, resampled to the model's rate.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


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


class SegmentPrinter:
    """Prints each segment's text (decoded on its own, as transformers' pipeline decodes its chunks) as
    long-form generation makes it final; the prompt is not printed."""

    def __init__(self, tokenizer: Any):
        self.tokenizer, self.prompt_done = tokenizer, False

    def put(self, tokens: Any) -> None:
        if self.prompt_done:
            print(self.tokenizer.decode(tokens, skip_special_tokens=True), end="", flush=True)
        self.prompt_done = True

    def end(self) -> None:
        print(flush=True)


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
    # the whole audio: longer than one window it is decoded window after window (Whisper's long form)
    whole = {"truncation": False, "padding": "longest"} if len(audio) > features.n_samples else {}
    inputs = features(audio, sampling_rate=features.sampling_rate, **whole)
    if args.timestamps:
        out = model.generate(inputs["input_features"], return_timestamps=True, return_segments=True, **settings)
        for segment in out.segments[0]:
            text = tokenizer.decode(segment["tokens"], skip_special_tokens=True)
            print(f"[{segment['start']:.2f} -> {segment['end']:.2f}]{text}", flush=True)
    else:  # one window token by token; longer audio segment by segment, as each window is decoded
        streamer = SegmentPrinter(tokenizer) if whole else TextStreamer(tokenizer, skip_prompt=True,
                                                                         skip_special_tokens=True)
        model.generate(inputs["input_features"], streamer=streamer, **settings)
    sys.stdout.flush()
    return 0

"""Whisper's decoder prompt: start, language, task and timestamp tokens, as transformers 5 builds them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from flaxformers.generation.logits_process import NEG_INF, FlaxLogitsProcessor

Array = jax.Array

# Whisper's languages: code -> name (the order of the language tokens in the multilingual vocabulary).
LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog", "mg": "malagasy",
    "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa", "ba": "bashkir",
    "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}
# Other names Whisper accepts for a language.
LANGUAGE_ALIASES: dict[str, str] = {
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb", "pushto": "ps",
    "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si", "castilian": "es", "mandarin": "zh",
}
TO_LANGUAGE_CODE: dict[str, str] = {**{name: code for code, name in LANGUAGES.items()}, **LANGUAGE_ALIASES}
TASKS = ("transcribe", "translate")


def required_setting(config: Any, key: str, purpose: str) -> Any:
    value = getattr(config, key, None)
    if value is None:
        raise ValueError(f"The generation config has no `{key}`, needed to {purpose}: load the model's "
                         "generation_config.json (Whisper checkpoints ship one) or set generation_config.{key}.")
    return value


def language_token_id(config: Any, language: str) -> int:
    """The id of `language` given as a code ("fr"), a name ("french") or a token ("<|fr|>")."""
    lang_to_id = required_setting(config, "lang_to_id", f"set language={language!r}")
    name = language.lower()
    code = TO_LANGUAGE_CODE.get(name, name)
    token = language if language in lang_to_id else f"<|{code}|>"
    if token not in lang_to_id:
        raise ValueError(f"language={language!r} is not one of this model's languages; expected a code, name or "
                         f"token of: {sorted(lang_to_id)}.")
    return lang_to_id[token]


def _forced_prefix(config: Any) -> list[int | None]:
    """4.57's `forced_decoder_ids` [[1, id], [2, id], ...] as the tokens after the start token."""
    forced = getattr(config, "forced_decoder_ids", None) or []
    if getattr(config, "task", None) is not None or getattr(config, "language", None) is not None:
        return []  # task and language replace them, as in transformers
    for i, (index, _) in enumerate(forced):
        if index != i + 1:
            raise ValueError(f"forced_decoder_ids={forced} must force consecutive positions 1, 2, ... (Whisper's "
                             "prompt); pass language= and task= instead.")
    return [token for _, token in forced]


def whisper_prompt(config: Any, batch: int, detect_language: Callable[[], np.ndarray]) -> np.ndarray:
    """The decoder prompt [B, P]: start token, language (given, forced or detected), task, `<|notimestamps|>`."""
    prefix = [config.decoder_start_token_id, *_forced_prefix(config)]
    language, task = getattr(config, "language", None), getattr(config, "task", None)
    rows = [list(prefix) for _ in range(batch)]
    languages = language if isinstance(language, (list, tuple)) else [language] * batch
    if len(languages) != batch:
        raise ValueError(f"language has {len(languages)} entries for a batch of {batch}; pass one per row or one.")
    if language is not None:
        lang_ids = [language_token_id(config, lang) for lang in languages]
    elif getattr(config, "lang_to_id", None) and (len(prefix) < 2 or prefix[1] is None):
        lang_ids = [int(i) for i in detect_language()]
    else:
        lang_ids = None
    task_ids = set((getattr(config, "task_to_id", None) or {}).values())
    for i, row in enumerate(rows):
        if lang_ids is not None:
            row[1:2] = [lang_ids[i]]
        if task is not None:
            if task not in TASKS:
                raise ValueError(f"task={task!r} is not supported; expected one of {TASKS}.")
            task_id = required_setting(config, "task_to_id", f"set task={task!r}")[task]
            if any(t in task_ids for t in row):
                row[:] = [task_id if t in task_ids else t for t in row]
            else:
                row.append(task_id)
        elif language is not None and task_ids and not any(t in task_ids for t in row):
            row.append(config.task_to_id["transcribe"])
        no_timestamps = getattr(config, "no_timestamps_token_id", None)
        if getattr(config, "return_timestamps", False):
            if row[-1] == no_timestamps:
                row.pop()
        elif no_timestamps is not None and row[-1] != no_timestamps:
            row.append(no_timestamps)
        row[:] = [t for t in row if t is not None]
    if len({len(row) for row in rows}) != 1:
        raise ValueError("The rows' decoder prompts differ in length; generate them separately.")
    return np.asarray(rows, np.int32)


class FlaxWhisperTimeStampLogitsProcessor(FlaxLogitsProcessor):
    """Whisper's timestamp rules (transformers' `WhisperTimeStampLogitsProcessor`), on the engine's fixed-width
    sequences: timestamps come in pairs (except before eos), never decrease, the first generated token is one
    (at most `max_initial_timestamp_index` in), and a timestamp is forced when their total probability beats
    every text token. `<|notimestamps|>` is never generated."""

    timestamp_begin: int = struct.field(pytree_node=False)
    eos_token_id: int = struct.field(pytree_node=False)
    begin_index: Array = 0  # the first generated position (the prompt's length)
    max_initial_timestamp_index: int | None = struct.field(pytree_node=False, default=None)
    start: Array = 0  # the bucket's left padding

    def __call__(self, input_ids, scores, cur_len):
        tb, vocab = self.timestamp_begin, jnp.arange(scores.shape[-1])
        first = self.start + self.begin_index  # buffer index of the first generated token
        generated = cur_len - first
        last = jnp.take(input_ids, jnp.maximum(cur_len - 1, 0), axis=1)  # [B]
        penultimate = jnp.take(input_ids, jnp.maximum(cur_len - 2, 0), axis=1)
        last_was_timestamp = (generated >= 1) & (last >= tb)
        penultimate_was_timestamp = (generated < 2) | (penultimate >= tb)
        scores = jnp.where(vocab == tb - 1, NEG_INF, scores)  # <|notimestamps|>
        pair_done = (last_was_timestamp & penultimate_was_timestamp)[:, None] & (vocab >= tb)[None, :]
        pair_open = (last_was_timestamp & ~penultimate_was_timestamp)[:, None] & (vocab < self.eos_token_id)[None, :]
        scores = jnp.where(pair_done | pair_open, NEG_INF, scores)
        positions = jnp.arange(input_ids.shape[1])[None, :]
        is_timestamp = (positions >= first) & (positions < cur_len) & (input_ids >= tb)  # [B, L]
        last_position = jnp.max(jnp.where(is_timestamp, positions, -1), axis=1)
        last_timestamp = jnp.take_along_axis(input_ids, jnp.maximum(last_position, 0)[:, None], axis=1)[:, 0]
        floor = jnp.where(last_position < 0, tb,
                          jnp.where(last_was_timestamp & ~penultimate_was_timestamp, last_timestamp, last_timestamp + 1))
        scores = jnp.where((vocab[None, :] >= tb) & (vocab[None, :] < floor[:, None]), NEG_INF, scores)
        at_begin = generated == 0
        initial = vocab < tb
        if self.max_initial_timestamp_index is not None:
            initial |= vocab > tb + self.max_initial_timestamp_index
        scores = jnp.where(at_begin & initial[None, :], NEG_INF, scores)
        logprobs = jax.nn.log_softmax(scores.astype(jnp.float32), axis=-1)
        timestamp_logprob = jax.nn.logsumexp(jnp.where(vocab >= tb, logprobs, NEG_INF), axis=-1)
        best_text = jnp.max(jnp.where(vocab < tb, logprobs, NEG_INF), axis=-1)
        force = (timestamp_logprob > best_text)[:, None] & (vocab < tb)[None, :]
        return jnp.where(force, NEG_INF, scores)

"""GenerationConfig: the decoding settings, read from and written to `generation_config.json`."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Any

from flaxformers.checkpoints.io import atomic_write_text
from flaxformers.configuration_utils import PretrainedConfig

GENERATION_CONFIG_NAME = "generation_config.json"

# transformers' defaults for every key we act on.
DEFAULTS: dict[str, Any] = {
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "min_new_tokens": None,
    "do_sample": False,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "min_p": None,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "num_beams": 1,
    "length_penalty": 1.0,
    "early_stopping": False,
    "num_return_sequences": 1,
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": None,
    "decoder_start_token_id": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "forced_decoder_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "output_scores": False,
    "return_dict_in_generate": False,
}
_FROM_MODEL_CONFIG = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id",
                      "forced_bos_token_id", "forced_eos_token_id")


class GenerationConfig:
    def __init__(self, **kwargs: Any):
        for key, default in DEFAULTS.items():
            setattr(self, key, kwargs.pop(key, copy.deepcopy(default)))
        kwargs.pop("transformers_version", None)
        for key, value in kwargs.items():  # unknown keys survive a round trip
            setattr(self, key, value)

    @classmethod
    def from_model_config(cls, model_config: Any) -> GenerationConfig:
        """The settings a model config carries: its special tokens, and (as in transformers 4.x) any
        generation setting set on it, e.g. `config.max_length`; for a model of parts (an image encoder
        and a text decoder), what the outer config leaves unset comes from its `decoder` config, as in
        transformers 5."""
        values = {k: getattr(model_config, k) for k in (*_FROM_MODEL_CONFIG, *DEFAULTS)
                  if getattr(model_config, k, None) is not None}
        decoder = getattr(model_config, "decoder", None)
        if isinstance(decoder, PretrainedConfig):
            # a default-valued outer setting counts as unset, as in transformers 5
            values = {**cls.from_model_config(decoder).to_diff_dict(), **cls(**values).to_diff_dict()}
        return cls(**values)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> GenerationConfig:
        return cls(**{**data, **kwargs})

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **hub_kwargs: Any) -> GenerationConfig:
        from flaxformers.checkpoints.hub import resolve_file

        path = resolve_file(path_or_repo_id, GENERATION_CONFIG_NAME, **hub_kwargs)
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def to_dict(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in sorted(self.__dict__.items()) if not k.startswith("_")}

    def to_diff_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in DEFAULTS or DEFAULTS[k] != v}

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        os.makedirs(save_directory, exist_ok=True)
        text = json.dumps(self.to_diff_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write_text(os.path.join(save_directory, GENERATION_CONFIG_NAME), text)

    def update(self, **kwargs: Any) -> dict[str, Any]:
        """Set the known keys; return the ones that are not generation settings."""
        unused = {}
        for key, value in kwargs.items():
            if key in DEFAULTS or hasattr(self, key):
                setattr(self, key, value)
            else:
                unused[key] = value
        return unused

    def validate(self) -> None:
        """Clear errors for settings generate cannot honour."""

        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        check(is_int(self.num_beams) and self.num_beams >= 1, f"num_beams must be an int >= 1, got {self.num_beams!r}.")
        check(is_int(self.num_return_sequences) and self.num_return_sequences >= 1,
              f"num_return_sequences must be an int >= 1, got {self.num_return_sequences!r}.")
        check(self.max_new_tokens is None or (is_int(self.max_new_tokens) and self.max_new_tokens >= 1),
              f"max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}.")
        check(self.max_length is None or is_int(self.max_length), f"max_length must be an int, got {self.max_length!r}.")
        check(self.min_new_tokens is None or (is_int(self.min_new_tokens) and self.min_new_tokens >= 0),
              f"min_new_tokens must be an int >= 0, got {self.min_new_tokens!r}.")
        check(self.min_length is None or (is_int(self.min_length) and self.min_length >= 0),
              f"min_length must be an int >= 0, got {self.min_length!r}.")
        if self.do_sample:
            check(self.temperature is None or self.temperature > 0,
                  f"temperature must be > 0 when sampling, got {self.temperature!r}; for greedy use do_sample=False.")
        check(self.top_k is None or (is_int(self.top_k) and self.top_k >= 0), f"top_k must be an int >= 0, got {self.top_k!r}.")
        check(self.top_p is None or 0.0 <= self.top_p <= 1.0, f"top_p must be in [0, 1], got {self.top_p!r}.")
        check(self.min_p is None or 0.0 <= self.min_p <= 1.0, f"min_p must be in [0, 1], got {self.min_p!r}.")
        check(self.repetition_penalty is None or self.repetition_penalty > 0,
              f"repetition_penalty must be > 0, got {self.repetition_penalty!r}.")
        check(self.no_repeat_ngram_size is None or (is_int(self.no_repeat_ngram_size) and self.no_repeat_ngram_size >= 0),
              f"no_repeat_ngram_size must be an int >= 0, got {self.no_repeat_ngram_size!r}.")
        check(self.early_stopping in (True, False, "never"),
              f"early_stopping must be True, False or 'never', got {self.early_stopping!r}.")

    def copy(self) -> GenerationConfig:
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenerationConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"GenerationConfig {json.dumps(self.to_diff_dict(), sort_keys=True)}"


@dataclass(frozen=True)
class Budget:
    """The special tokens and lengths of one generate call, resolved as transformers 5 resolves them."""

    eos: list[int]  # eos_token_id as a list (maybe empty)
    pad: int | None  # pad_token_id, else the first eos token (open-end generation), else None
    max_new_tokens: int
    min_length: int  # total length under which eos is suppressed (0: none)


def token_ids(value: Any, name: str) -> list[int]:
    """An int or a list of ints (non-negative) as a list; None as []."""
    if value is None:
        return []
    values = [value] if isinstance(value, int) or hasattr(value, "__index__") else list(value)
    if not all(hasattr(v, "__index__") and not isinstance(v, bool) and int(v) >= 0 for v in values):
        raise ValueError(f"`{name}` must be a non-negative int or a list of them, got {value!r}.")
    return [int(v) for v in values]


def budget(config: GenerationConfig, prompt_len: int, max_positions: int | None,
           explicit_max_length: bool) -> Budget:
    """pad/eos and lengths of a generate call on prompts `prompt_len` wide, shared by the Flax engine and
    the PyTorch twin. `explicit_max_length` says the caller passed `max_length`; otherwise transformers'
    default of 20 new tokens applies, capped by the model's positions."""
    eos = token_ids(config.eos_token_id, "eos_token_id")
    pad = config.pad_token_id if config.pad_token_id is not None else (eos[0] if eos else None)
    if config.max_new_tokens is not None:
        max_new = int(config.max_new_tokens)
    elif explicit_max_length or config.max_length != DEFAULTS["max_length"]:
        max_new = int(config.max_length) - prompt_len
    else:
        limit = prompt_len + DEFAULTS["max_length"]
        max_new = (min(limit, max_positions) if max_positions else limit) - prompt_len
    if max_new < 1:
        raise ValueError(f"The prompt has {prompt_len} tokens and max_length is {prompt_len + max_new}: nothing to "
                         "generate. Set max_new_tokens >= 1.")
    min_length = int(config.min_length or 0)
    if config.min_new_tokens is not None:
        min_length = prompt_len + int(config.min_new_tokens)
    return Budget(eos, pad, max_new, min_length)


def check_positions(longest_prompt: int, max_new_tokens: int, max_positions: int | None, name: str) -> None:
    """Refuse, before decoding, a prompt whose real tokens plus the new ones need more positions than
    the model has (`name` is the config key that says how many)."""
    if max_positions is not None and longest_prompt + max_new_tokens > max_positions:
        raise ValueError(
            f"A prompt of {longest_prompt} tokens plus max_new_tokens={max_new_tokens} needs "
            f"{longest_prompt + max_new_tokens} positions, more than the model's {name}={max_positions}. Lower "
            "max_new_tokens or truncate the prompt."
        )

"""Model configurations that read and write Hugging Face `config.json` files.

A config keeps every key it was given, known or not, so a load/save round trip loses nothing.
Family configs declare their keys as keyword defaults in `__init__` and their aliases in
`attribute_map` (`hidden_size` -> `n_embd`, ...), exactly as transformers does.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, ClassVar

from flaxformers.checkpoints.hub import PushToHubMixin
from flaxformers.checkpoints.io import atomic_write_text

CONFIG_NAME = "config.json"

# Keys every config carries, with transformers' defaults.
_COMMON_DEFAULTS: dict[str, Any] = {
    "output_attentions": False,
    "output_hidden_states": False,
    "return_dict": True,
    "use_cache": True,
    "is_decoder": False,
    "add_cross_attention": False,
    "tie_word_embeddings": True,
    "architectures": None,
    "problem_type": None,
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": None,
    "sep_token_id": None,
    "decoder_start_token_id": None,
}
# The rest of transformers 4.57's PretrainedConfig attributes, with its defaults. Code written for 4.57
# reads them (`config.is_encoder_decoder`, `config.max_length`), so they read as 4.57 has them; a
# config keeps and saves one only when it is set.
_457_DEFAULTS: dict[str, Any] = {
    "is_encoder_decoder": False,
    "cross_attention_hidden_size": None,
    "tie_encoder_decoder": False,
    "torchscript": False,
    "dtype": None,
    "torch_dtype": None,
    "use_bfloat16": False,
    "tf_legacy_loss": False,
    "pruned_heads": {},
    "chunk_size_feed_forward": 0,
    "finetuning_task": None,
    "task_specific_params": None,
    "tokenizer_class": None,
    "prefix": None,
    "transformers_version": None,
    "_name_or_path": "",
    # generation settings, which 4.x configs still carried (GenerationConfig.from_model_config reads them)
    "max_length": 20,
    "min_length": 0,
    "do_sample": False,
    "early_stopping": False,
    "num_beams": 1,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "typical_p": 1.0,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "num_return_sequences": 1,
    "output_scores": False,
    "return_dict_in_generate": False,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "remove_invalid_values": False,
    "exponential_decay_length_penalty": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
}
# Activation names configs may use; nn.layers.ACTIVATIONS implements exactly these (kept here so that
# configs import without jax).
ACTIVATION_NAMES = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_python", "quick_gelu", "relu",
                    "silu", "swish", "tanh", "sigmoid", "linear")
_PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


class PretrainedConfig(PushToHubMixin):
    model_type: ClassVar[str] = ""
    attribute_map: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs: Any):
        id2label = kwargs.pop("id2label", None)
        num_labels = kwargs.pop("num_labels", None)
        kwargs.pop("label2id", None)  # derived from id2label
        for key, default in _COMMON_DEFAULTS.items():
            setattr(self, key, kwargs.pop(key, default))
        if id2label is None:
            id2label = {i: f"LABEL_{i}" for i in range(num_labels if num_labels is not None else 2)}
        self.id2label = {int(k): v for k, v in id2label.items()}
        if num_labels is not None and num_labels != len(self.id2label):
            self.id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        if self.problem_type is not None and self.problem_type not in _PROBLEM_TYPES:
            raise ValueError(f"config.problem_type={self.problem_type!r} is not one of {_PROBLEM_TYPES}.")
        kwargs.pop("model_type", None)
        kwargs.pop("transformers_version", None)
        # Unknown keys are kept verbatim so that saving writes them back.
        for key, value in kwargs.items():
            setattr(self, key, value)

    # --- aliases -------------------------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        key = type(self).attribute_map.get(key, key)
        super().__setattr__(key, value)

    def __getattr__(self, key: str) -> Any:
        # Only called when normal lookup fails: resolve aliases, then 4.57's defaults.
        mapped = type(self).attribute_map.get(key)
        if mapped is not None:
            return getattr(self, mapped)
        if key in _457_DEFAULTS:
            return copy.deepcopy(_457_DEFAULTS[key])
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    @property
    def name_or_path(self) -> str:
        return self._name_or_path

    @name_or_path.setter
    def name_or_path(self, value: str) -> None:
        self._name_or_path = str(value)

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict and not self.torchscript

    # --- labels --------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if len(self.id2label) != n:
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}

    @property
    def label2id(self) -> dict[str, int]:
        return {v: k for k, v in self.id2label.items()}

    # --- positions -------------------------------------------------------------------------------
    @property
    def position_limit(self) -> int | None:
        """The most positions inputs may use (None: no limit). `max_position_embeddings` by default;
        a config whose positions stretch past it (dynamic RoPE) says None."""
        return getattr(self, "max_position_embeddings", None)

    # --- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {k: v.to_dict() if isinstance(v, PretrainedConfig) else copy.deepcopy(v)  # nested: CLIP's towers
               for k, v in self.__dict__.items() if not k.startswith("_")}
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = self.label2id
        out["model_type"] = self.model_type
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **overrides: Any) -> PretrainedConfig:
        model_type = config_dict.get("model_type")
        if model_type and cls.model_type and model_type not in cls.accepted_model_types():
            raise ValueError(
                f"This checkpoint has model_type={model_type!r}, but {cls.__name__} expects "
                f"{cls.model_type!r}. Load it with the class for {model_type!r}, or use "
                "flaxformers.AutoConfig / the Auto model classes, which pick the class from config.json."
            )
        return cls(**{**config_dict, **overrides})

    @classmethod
    def accepted_model_types(cls) -> tuple[str, ...]:
        return (cls.model_type,)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> PretrainedConfig:
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON ({e}). Re-download or re-save the config.") from e
        return cls.from_dict(data)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any) -> PretrainedConfig:
        from flaxformers.checkpoints.hub import resolve_file

        hub_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in HUB_KWARGS}
        path = resolve_file(path_or_repo_id, CONFIG_NAME, **hub_kwargs)
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls.from_dict(data, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory={str(save_directory)!r} is a file; pass a directory.")
        os.makedirs(save_directory, exist_ok=True)
        atomic_write_text(os.path.join(save_directory, CONFIG_NAME), self.to_json_string())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"

    def _check_positive_ints(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            self._check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                        f"{name}={value!r} must be a positive integer.")

    def _check_heads(self) -> None:
        d, n = self.hidden_size, self.num_attention_heads
        self._check(d % n == 0, f"hidden_size={d} must be a multiple of num_attention_heads={n}, since "
                                "head_dim = hidden_size / num_attention_heads.")

    def _check_activation(self, key: str, name: str) -> None:
        self._check(name in ACTIVATION_NAMES, f"{key}={name!r} is not one of {sorted(ACTIVATION_NAMES)}.")

    def _check(self, condition: bool, message: str) -> None:
        if not condition:
            raise ValueError(f"{type(self).__name__}: {message}")


def nested_config(value: PretrainedConfig | dict[str, Any] | None, name: str) -> PretrainedConfig:
    """A composite model's part (`vision_config`, `encoder`, ...) from its dict, by its `model_type`."""
    from flaxformers.auto import config_class_for

    if isinstance(value, PretrainedConfig):
        value = value.to_dict()
    value = dict(value or {})
    if "model_type" not in value:
        raise ValueError(f"{name} needs a `model_type` (the part's config.json has one); got keys {sorted(value)}.")
    return config_class_for(value["model_type"]).from_dict(value)


class CompositeEncoderDecoderConfig(PretrainedConfig):
    """The config of an encoder-decoder made of two models of this library: the `encoder` and `decoder`
    configs (dicts or objects; each part's class by its `model_type`). Subclasses set `model_type`."""

    def __init__(self, **kwargs: Any):
        if "encoder" not in kwargs or "decoder" not in kwargs:
            raise ValueError(f"{type(self).__name__} needs encoder= and decoder= configs (or their dicts).")
        self.encoder = nested_config(kwargs.pop("encoder"), "encoder")
        self.decoder = nested_config(kwargs.pop("decoder"), "decoder")
        kwargs.setdefault("is_encoder_decoder", True)
        super().__init__(**kwargs)

    @classmethod
    def from_encoder_decoder_configs(cls, encoder_config: PretrainedConfig, decoder_config: PretrainedConfig,
                                     **kwargs: Any) -> CompositeEncoderDecoderConfig:
        """The decoder set up as transformers does: causal, with cross-attention over the encoder."""
        decoder = decoder_config.to_dict()
        decoder.update(is_decoder=True, add_cross_attention=True)
        return cls(encoder=encoder_config.to_dict(), decoder=decoder, **kwargs)


HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "force_download", "subfolder")

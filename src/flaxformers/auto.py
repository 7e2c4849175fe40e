"""Pick the config and model class from `config.json`'s `model_type`, as the families declare them."""

from __future__ import annotations

import json
import os
from typing import Any

from flaxformers import registry
from flaxformers.checkpoints.hub import resolve_file
from flaxformers.configuration_utils import CONFIG_NAME, PretrainedConfig


def config_class_for(model_type: str) -> type[PretrainedConfig]:
    family, entry = registry.lookup(model_type)
    return registry.resolve(family, entry.config)


def model_class_for(model_type: str, task: str) -> type:
    family, entry = registry.lookup(model_type)
    if task not in entry.heads:
        raise ValueError(f"model_type={model_type!r} has no {task!r} head; it has {sorted(entry.heads)}.")
    return registry.resolve(family, entry.heads[task])


def gguf_path(path_or_repo_id: str | os.PathLike, gguf_file: str | os.PathLike) -> str:
    """`gguf_file` as transformers reads it: absolute, or relative to the model directory."""
    gguf_file = os.fspath(gguf_file)
    return gguf_file if os.path.isabs(gguf_file) else os.path.join(os.fspath(path_or_repo_id), gguf_file)


def _gguf_config(path_or_repo_id: str | os.PathLike, gguf_file: str | os.PathLike) -> dict[str, Any]:
    """The config.json-style dict of a GGUF file, from its header alone."""
    from flaxformers.checkpoints.gguf import read_gguf
    from flaxformers.checkpoints.gguf_mapping import gguf_config

    return gguf_config(read_gguf(gguf_path(path_or_repo_id, gguf_file)))


def read_model_config(path_or_repo_id: str | os.PathLike, **hub_kwargs: Any) -> dict[str, Any]:
    """A checkpoint's `config.json`, as a dict."""
    with open(resolve_file(path_or_repo_id, CONFIG_NAME, **hub_kwargs), encoding="utf-8") as f:
        return json.load(f)


def read_model_type(path_or_repo_id: str | os.PathLike, gguf_file: str | os.PathLike | None = None,
                    **hub_kwargs: Any) -> str:
    """The `model_type` of a checkpoint: from `config.json`, or from a GGUF file's architecture."""
    if gguf_file is not None:
        return _gguf_config(path_or_repo_id, gguf_file)["model_type"]
    data = read_model_config(path_or_repo_id, **hub_kwargs)
    if "model_type" not in data:
        raise ValueError(f"{CONFIG_NAME} of {os.fspath(path_or_repo_id)!r} has no model_type.")
    return data["model_type"]


class AutoConfig:
    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, gguf_file: str | os.PathLike | None = None,
                        **kwargs: Any) -> PretrainedConfig:
        if gguf_file is not None:
            config = _gguf_config(path_or_repo_id, gguf_file)
            return config_class_for(config["model_type"]).from_dict(config, **kwargs)
        return config_class_for(read_model_type(path_or_repo_id)).from_pretrained(path_or_repo_id, **kwargs)

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> PretrainedConfig:
        return config_class_for(model_type)(**kwargs)


class _AutoModel:
    task: str = "base"

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, *args: Any, **kwargs: Any):
        hub = {k: kwargs[k] for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        model_type = read_model_type(path_or_repo_id, kwargs.get("gguf_file"), **hub)
        return model_class_for(model_type, cls.task).from_pretrained(path_or_repo_id, *args, **kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any):
        return model_class_for(config.model_type, cls.task)(config, **kwargs)


def _auto(name: str, task: str) -> type[_AutoModel]:
    return type(name, (_AutoModel,), {"task": task, "__module__": __name__})


FlaxAutoModel = _auto("FlaxAutoModel", "base")
FlaxAutoModelForCausalLM = _auto("FlaxAutoModelForCausalLM", "causal-lm")
FlaxAutoModelForMaskedLM = _auto("FlaxAutoModelForMaskedLM", "masked-lm")
FlaxAutoModelForPreTraining = _auto("FlaxAutoModelForPreTraining", "pretraining")
FlaxAutoModelForNextSentencePrediction = _auto("FlaxAutoModelForNextSentencePrediction", "next-sentence-prediction")
FlaxAutoModelForSequenceClassification = _auto("FlaxAutoModelForSequenceClassification", "sequence-classification")
FlaxAutoModelForMultipleChoice = _auto("FlaxAutoModelForMultipleChoice", "multiple-choice")
FlaxAutoModelForTokenClassification = _auto("FlaxAutoModelForTokenClassification", "token-classification")
FlaxAutoModelForQuestionAnswering = _auto("FlaxAutoModelForQuestionAnswering", "question-answering")
FlaxAutoModelForSeq2SeqLM = _auto("FlaxAutoModelForSeq2SeqLM", "seq2seq-lm")
FlaxAutoModelForImageClassification = _auto("FlaxAutoModelForImageClassification", "image-classification")
FlaxAutoModelForVision2Seq = _auto("FlaxAutoModelForVision2Seq", "vision2seq")
FlaxAutoModelForSpeechSeq2Seq = _auto("FlaxAutoModelForSpeechSeq2Seq", "speech-seq2seq")
FlaxAutoModelForAudioClassification = _auto("FlaxAutoModelForAudioClassification", "audio-classification")
FlaxAutoModelForCTC = _auto("FlaxAutoModelForCTC", "ctc")
AUTO_CLASSES = {task: globals()[name] for task, name in registry.AUTO_TASKS.items()}


def model_class_for_checkpoint(config: PretrainedConfig) -> type:
    """The Flax class that matches `config.architectures` (e.g. GPT2LMHeadModel), else the base model."""
    import flaxformers

    for arch in config.architectures or ():
        cls = getattr(flaxformers, f"Flax{arch}", None) if f"Flax{arch}" in flaxformers.__all__ else None
        if cls is not None:
            return cls
    return model_class_for(config.model_type, "base")

"""Pick the config and model class from `config.json`'s `model_type`: one table, no `if` chains."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from flaxformers.checkpoints.hub import resolve_file
from flaxformers.configuration_utils import CONFIG_NAME, PretrainedConfig

# model_type -> (module, config class, {task: model class})
MODEL_TABLE: dict[str, tuple[str, str, dict[str, str]]] = {
    "gpt2": ("flaxformers.models.gpt2", "GPT2Config",
             {"base": "FlaxGPT2Model", "causal-lm": "FlaxGPT2LMHeadModel"}),
    "gemma": ("flaxformers.models.gemma", "GemmaConfig",
              {"base": "FlaxGemmaModel", "causal-lm": "FlaxGemmaForCausalLM"}),
    "gemma2": ("flaxformers.models.gemma", "Gemma2Config",
               {"base": "FlaxGemma2Model", "causal-lm": "FlaxGemma2ForCausalLM"}),
    "gemma3_text": ("flaxformers.models.gemma", "Gemma3TextConfig",
                    {"base": "FlaxGemma3Model", "causal-lm": "FlaxGemma3ForCausalLM"}),
    "bloom": ("flaxformers.models.bloom", "BloomConfig",
              {"base": "FlaxBloomModel", "causal-lm": "FlaxBloomForCausalLM"}),
    "bert": ("flaxformers.models.bert", "BertConfig", {
        "base": "FlaxBertModel",
        "causal-lm": "FlaxBertForCausalLM",
        "masked-lm": "FlaxBertForMaskedLM",
        "pretraining": "FlaxBertForPreTraining",
        "next-sentence-prediction": "FlaxBertForNextSentencePrediction",
        "sequence-classification": "FlaxBertForSequenceClassification",
        "multiple-choice": "FlaxBertForMultipleChoice",
        "token-classification": "FlaxBertForTokenClassification",
        "question-answering": "FlaxBertForQuestionAnswering",
    }),
}


def _entry(model_type: str) -> tuple[str, str, dict[str, str]]:
    try:
        return MODEL_TABLE[model_type]
    except KeyError:
        raise ValueError(
            f"model_type={model_type!r} is not supported; flaxformers knows {sorted(MODEL_TABLE)}."
        ) from None


def config_class_for(model_type: str) -> type[PretrainedConfig]:
    module, config_name, _ = _entry(model_type)
    return getattr(importlib.import_module(module), config_name)


def model_class_for(model_type: str, task: str) -> type:
    module, _, tasks = _entry(model_type)
    if task not in tasks:
        raise ValueError(f"model_type={model_type!r} has no {task!r} head; it has {sorted(tasks)}.")
    return getattr(importlib.import_module(module), tasks[task])


def gguf_path(path_or_repo_id: str | os.PathLike, gguf_file: str | os.PathLike) -> str:
    """`gguf_file` as transformers reads it: absolute, or relative to the model directory."""
    gguf_file = os.fspath(gguf_file)
    return gguf_file if os.path.isabs(gguf_file) else os.path.join(os.fspath(path_or_repo_id), gguf_file)


def _gguf_config(path_or_repo_id: str | os.PathLike, gguf_file: str | os.PathLike) -> dict[str, Any]:
    """The config.json-style dict of a GGUF file, from its header alone."""
    from flaxformers.checkpoints.gguf import gguf_config, read_gguf

    return gguf_config(read_gguf(gguf_path(path_or_repo_id, gguf_file)))


def read_model_type(path_or_repo_id: str | os.PathLike, gguf_file: str | os.PathLike | None = None,
                    **hub_kwargs: Any) -> str:
    """The `model_type` of a checkpoint: from `config.json`, or from a GGUF file's architecture."""
    if gguf_file is not None:
        return _gguf_config(path_or_repo_id, gguf_file)["model_type"]
    with open(resolve_file(path_or_repo_id, CONFIG_NAME, **hub_kwargs), encoding="utf-8") as f:
        data = json.load(f)
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


def model_class_for_checkpoint(config: PretrainedConfig) -> type:
    """The Flax class that matches `config.architectures` (e.g. GPT2LMHeadModel), else the base model."""
    import flaxformers

    for arch in config.architectures or ():
        cls = getattr(flaxformers, f"Flax{arch}", None) if f"Flax{arch}" in flaxformers.__all__ else None
        if cls is not None:
            return cls
    return model_class_for(config.model_type, "base")

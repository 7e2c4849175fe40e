"""`pipeline(task, model=...)`: transformers' pipelines on flaxformers models, same arguments and output shapes.

    >>> from flaxformers import pipeline
    >>> fill = pipeline("fill-mask", model="path/to/masked-lm")
    >>> fill("Paris is the [MASK] of France.", top_k=2)
    [{'score': ..., 'token': ..., 'token_str': ..., 'sequence': ...}, ...]

`TASKS` is the table of tasks: the pipeline class, the Auto task its model loads as, the
flaxformers default model (`flaxformers.defaults`), if there is one, and what the pipeline reads its
inputs with (a tokenizer, an image processor or both). A task is added with a row.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from typing import Any

from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Pipeline


@dataclass(frozen=True)
class Task:
    pipeline: str  # "module:Class"
    auto: str  # the Auto task (flaxformers.registry.AUTO_TASKS) of its model
    default: str | None = None  # the flaxformers.defaults task of its default model
    # what the pipeline class takes after the model, in order: "tokenizer" and/or "image_processor"
    preprocessors: tuple[str, ...] = ("tokenizer",)

    def pipeline_class(self) -> type[Pipeline]:
        module, name = self.pipeline.split(":")
        return getattr(importlib.import_module(module), name)


_HERE = __name__
TASKS: dict[str, Task] = {
    "text-generation": Task(f"{_HERE}.text_generation:TextGenerationPipeline", "causal-lm", "causal-lm"),
    "fill-mask": Task(f"{_HERE}.fill_mask:FillMaskPipeline", "masked-lm"),
    "feature-extraction": Task(f"{_HERE}.feature_extraction:FeatureExtractionPipeline", "base", "embed"),
    "sentence-embeddings": Task(f"{_HERE}.feature_extraction:SentenceEmbeddingPipeline", "base", "embed"),
    "text-classification": Task(f"{_HERE}.text_classification:TextClassificationPipeline", "sequence-classification"),
    "token-classification": Task(f"{_HERE}.token_classification:TokenClassificationPipeline", "token-classification"),
    "question-answering": Task(f"{_HERE}.question_answering:QuestionAnsweringPipeline", "question-answering"),
    "text2text-generation": Task(f"{_HERE}.text2text_generation:Text2TextGenerationPipeline", "seq2seq-lm"),
    "summarization": Task(f"{_HERE}.text2text_generation:SummarizationPipeline", "seq2seq-lm"),
    "translation": Task(f"{_HERE}.text2text_generation:TranslationPipeline", "seq2seq-lm"),
    # speech encoder-decoders generate; a CTC checkpoint (its `architectures`) loads as one
    "automatic-speech-recognition": Task(f"{_HERE}.automatic_speech_recognition:AutomaticSpeechRecognitionPipeline",
                                         "speech-seq2seq"),
    "image-classification": Task(f"{_HERE}.vision:ImageClassificationPipeline", "image-classification",
                                 preprocessors=("image_processor",)),
    "image-feature-extraction": Task(f"{_HERE}.vision:ImageFeatureExtractionPipeline", "base",
                                     preprocessors=("image_processor",)),
    "zero-shot-image-classification": Task(f"{_HERE}.vision:ZeroShotImageClassificationPipeline", "base",
                                           preprocessors=("image_processor", "tokenizer")),
    "image-to-text": Task(f"{_HERE}.vision:ImageToTextPipeline", "vision2seq",
                          preprocessors=("image_processor", "tokenizer")),
}
TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
# The task of a checkpoint without one given, from the suffix of its config's `architectures`.
_TASK_OF_ARCHITECTURE = (("ForCausalLM", "text-generation"), ("LMHeadModel", "text-generation"),
                         ("ForMaskedLM", "fill-mask"), ("ForSequenceClassification", "text-classification"),
                         ("ForTokenClassification", "token-classification"),
                         ("ForQuestionAnswering", "question-answering"),
                         ("ForCTC", "automatic-speech-recognition"),
                         ("ForConditionalGeneration", "text2text-generation"), ("MTModel", "translation"),
                         ("ForImageClassification", "image-classification"))
# What `pipeline()` passes to the embedder of sentence-embeddings rather than to the pipeline
_EMBEDDER_OPTIONS = ("pooling", "normalize", "max_seq_length")


def check_task(task: str) -> str:
    """The canonical name of `task` (aliases resolved), or a clear error listing the tasks."""
    name = TASK_ALIASES.get(task, task)
    if name.startswith("translation_"):  # translation_en_to_fr: its own task_specific_params
        name = "translation"
    if name not in TASKS:
        raise KeyError(f"Unknown task {task!r}; flaxformers has {sorted([*TASKS, *TASK_ALIASES])}.")
    return name


def infer_task(model: str | os.PathLike) -> str:
    """The task of a checkpoint directory from its config's `architectures` (feature-extraction when none says)."""
    path = os.path.join(os.fspath(model), "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"pipeline() needs task= for {os.fspath(model)!r}: it has no config.json to infer it from.")
    with open(path, encoding="utf-8") as f:
        architectures = json.load(f).get("architectures") or []
    for architecture in architectures:
        for suffix, task in _TASK_OF_ARCHITECTURE:
            if architecture.endswith(suffix):
                return task
    return "feature-extraction"


def pipeline(task: str | None = None, model: Any = None, tokenizer: Any = None, *, image_processor: Any = None,
             dtype: Any = None, model_kwargs: dict[str, Any] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
             **kwargs: Any) -> Pipeline:
    """A pipeline for `task` ("text-generation", "fill-mask", "feature-extraction", "sentence-embeddings",
    "text-classification" / "sentiment-analysis", "token-classification" / "ner", "question-answering",
    "image-classification", "image-feature-extraction", "zero-shot-image-classification", "image-to-text").

    `model` is a directory, Hub repo id or (text-generation) `.gguf` file, or a loaded model; without
    it the task's default model is used where flaxformers ships one. `tokenizer` and `image_processor`
    (objects or paths) default to the model's own. `dtype` (default float32) is the compute dtype of a loaded
    model, `model_kwargs` go to its `from_pretrained`. Other keyword arguments are the pipeline's
    call options, the defaults of every call (e.g. `max_new_tokens=`, `aggregation_strategy=`); for
    sentence-embeddings also `pooling=`, `normalize=` and `max_seq_length=`.
    """
    if task is None:
        if not isinstance(model, str | os.PathLike):
            raise ValueError("pipeline() needs task= (e.g. 'text-generation') unless model= is a checkpoint path.")
        task = infer_task(model)
    name = check_task(task)
    spec = TASKS[name]
    if model is None:
        if spec.default is None:
            raise ValueError(f"flaxformers ships no default model for {name!r}; pass model= (a checkpoint path).")
        from flaxformers.defaults import resolve_default

        model = resolve_default(spec.default)
        if name == "text-generation":  # the default text model has no chat template: chats go to the chat model
            kwargs.setdefault("chat_loader", _default_chat_loader(dtype))
    if name == "sentence-embeddings":
        embedder = _embedder(model, tokenizer, dtype, model_kwargs or {},
                             {k: kwargs.pop(k) for k in _EMBEDDER_OPTIONS if k in kwargs})
        return spec.pipeline_class()(embedder, batch_size=batch_size, **kwargs)
    if name == "automatic-speech-recognition":
        from flaxformers.pipelines.automatic_speech_recognition import load_feature_extractor

        kwargs["feature_extractor"] = load_feature_extractor(model, kwargs.get("feature_extractor"))
        if isinstance(model, str | os.PathLike) and _architecture_suffix(model) == "ForCTC":
            spec = Task(spec.pipeline, "ctc")
    if spec.preprocessors != ("tokenizer",):
        loaded = _load_model(spec, model, dtype, model_kwargs or {})
        preprocessors = {"tokenizer": lambda: _load_tokenizer(tokenizer, model),
                         "image_processor": lambda: _load_image_processor(image_processor, model)}
        return spec.pipeline_class()(loaded, *(preprocessors[p]() for p in spec.preprocessors),
                                     batch_size=batch_size, **kwargs)
    model, tokenizer = _load(spec, model, tokenizer, dtype, model_kwargs or {})
    return spec.pipeline_class()(model, tokenizer, batch_size=batch_size, **kwargs)


def _architecture_suffix(model: str | os.PathLike) -> str | None:
    path = os.path.join(os.fspath(model), "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        architectures = json.load(f).get("architectures") or []
    return "ForCTC" if any(a.endswith("ForCTC") for a in architectures) else None


def _default_chat_loader(dtype: Any):
    """Loads the default chat model, for chats given to the default text model."""

    def load() -> tuple[Any, Any]:
        from flaxformers.defaults import load_causal_lm, resolve_default

        return load_causal_lm(resolve_default("chat"), dtype)

    return load


def _load_tokenizer(tokenizer: Any, model: Any) -> Any:
    from flaxformers.tokenizers import AutoTokenizer

    if tokenizer is None:
        if not isinstance(model, str | os.PathLike):
            raise ValueError("pipeline() was given a loaded model and no tokenizer: pass tokenizer= (a tokenizer or "
                             "its directory).")
        tokenizer = model
    return AutoTokenizer.from_pretrained(tokenizer) if isinstance(tokenizer, str | os.PathLike) else tokenizer


def _load_image_processor(image_processor: Any, model: Any) -> Any:
    from flaxformers.processors import AutoImageProcessor

    if image_processor is None:
        if not isinstance(model, str | os.PathLike):
            raise ValueError("pipeline() was given a loaded model and no image processor: pass image_processor= (an "
                             "image processor or its directory).")
        image_processor = model
    if isinstance(image_processor, str | os.PathLike):
        return AutoImageProcessor.from_pretrained(image_processor)
    return image_processor


def _load_model(spec: Task, model: Any, dtype: Any, model_kwargs: dict[str, Any]) -> Any:
    """A loaded model as it is; a path with the task's Auto class."""
    import jax.numpy as jnp

    from flaxformers.auto import AUTO_CLASSES

    if not isinstance(model, str | os.PathLike):
        return model
    return AUTO_CLASSES[spec.auto].from_pretrained(model, dtype=jnp.dtype(dtype or jnp.float32), **model_kwargs)


def _load(spec: Task, model: Any, tokenizer: Any, dtype: Any, model_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(model, tokenizer) for a task: a path loads with the task's Auto class (or as a causal LM, GGUF included)."""
    if isinstance(model, str | os.PathLike) and spec.auto == "causal-lm":
        from flaxformers.defaults import load_causal_lm

        loaded, own_tokenizer = load_causal_lm(model, dtype, **model_kwargs)
        return loaded, own_tokenizer if tokenizer is None else _load_tokenizer(tokenizer, model)
    return _load_model(spec, model, dtype, model_kwargs), _load_tokenizer(tokenizer, model)


def _embedder(model: Any, tokenizer: Any, dtype: Any, model_kwargs: dict[str, Any], options: dict[str, Any]):
    from flaxformers.embeddings import SentenceEmbedder, sentence_transformers_options

    if isinstance(model, str | os.PathLike):
        options = {**sentence_transformers_options(model), **options}
    loaded, tokenizer = _load(TASKS["sentence-embeddings"], model, tokenizer, dtype, model_kwargs)
    return SentenceEmbedder(loaded, tokenizer, **options)


__all__ = ["pipeline", "Pipeline", "TASKS", "TASK_ALIASES", "Task", "check_task", "infer_task"]

"""transformers-style pipelines: `pipeline(task, model=..., tokenizer=...)` returns a callable for the task.

    translate = pipeline("translation", model="path/to/opus-mt-en-de")
    translate("How are you?")                 # [{"translation_text": "..."}]
    translate(["Hello", "Goodbye"], num_beams=4)

`TASKS` maps each task name to its class and the Auto class that loads its model. A task class
subclasses `Pipeline` and writes `preprocess`, `forward` and `postprocess`; adding a task is one class
and one `TASKS` entry. Inputs are batched: a list of texts is one model call (`batch_size=` splits it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class Pipeline:
    """Texts in, one list of result dicts per text out (transformers' shapes)."""

    def __init__(self, model: Any, tokenizer: Any, task: str, **defaults: Any):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.defaults = defaults  # call keywords that every call gets unless it overrides them

    def __call__(self, inputs: str | Sequence[str], batch_size: int | None = None, **kwargs: Any):
        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"The {self.task} pipeline takes a text or a list of texts, got {inputs!r}.")
        kwargs = {**self.defaults, **kwargs}
        step = batch_size or len(texts)
        results = []
        for start in range(0, len(texts), step):
            batch = self.preprocess(texts[start:start + step], **kwargs)
            results += self.postprocess(self.forward(batch, **kwargs), **kwargs)
        if single:
            return results[0]
        return [r[0] for r in results] if all(len(r) == 1 for r in results) else results

    def preprocess(self, texts: list[str], **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def forward(self, batch: dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError

    def postprocess(self, outputs: Any, **kwargs: Any) -> list[list[dict[str, Any]]]:
        raise NotImplementedError


# --- text to text ---------------------------------------------------------------------------------
# keywords of the pipeline itself; all others go to generate
_PIPELINE_KEYS = ("truncation", "return_tensors", "return_text", "clean_up_tokenization_spaces", "src_lang",
                  "tgt_lang")


class Text2TextGenerationPipeline(Pipeline):
    """An encoder-decoder generates a text for each input (`[{"generated_text": ...}]`).

    Keywords: `return_text` / `return_tensors` (token ids as `generated_token_ids`), `truncation`,
    and every `generate` keyword (`max_new_tokens`, `num_beams`, `num_return_sequences`, ...). A
    model config's `task_specific_params[task]` (T5's "summarize: " prefix and beam settings) applies.
    """

    return_name = "generated"

    def __init__(self, model: Any, tokenizer: Any, task: str, **defaults: Any):
        params = dict((getattr(model.config, "task_specific_params", None) or {}).get(task, {}))
        self.prefix = params.pop("prefix", "")
        super().__init__(model, tokenizer, task, **{**params, **defaults})

    def preprocess(self, texts: list[str], truncation: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Right-padded sources; `truncation=True` cuts them at the tokenizer's (or the model's) maximum length."""
        limit = None
        if truncation:
            limit = self.tokenizer.model_max_length or getattr(self.model.config, "max_position_embeddings", None)
        return self.tokenizer([self.prefix + t for t in texts], padding=True, padding_side="right",
                              truncation=truncation, max_length=limit)

    def forward(self, batch: dict[str, Any], **kwargs: Any) -> Any:
        settings = {k: v for k, v in kwargs.items() if k not in _PIPELINE_KEYS}
        sequences = self.model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], **settings).sequences
        per_input = len(sequences) // len(batch["input_ids"])
        return np.asarray(sequences).reshape(len(batch["input_ids"]), per_input, -1)

    def postprocess(self, outputs: np.ndarray, return_text: bool = True, return_tensors: bool = False,
                    **kwargs: Any) -> list[list[dict[str, Any]]]:
        results = []
        for rows in outputs:
            records = []
            for row in rows:
                record: dict[str, Any] = {}
                if return_tensors:
                    record[f"{self.return_name}_token_ids"] = row.tolist()
                if return_text:
                    record[f"{self.return_name}_text"] = self.tokenizer.decode(row, skip_special_tokens=True)
                records.append(record)
            results.append(records)
        return results


class SummarizationPipeline(Text2TextGenerationPipeline):
    """`[{"summary_text": ...}]` per input."""

    return_name = "summary"


class TranslationPipeline(Text2TextGenerationPipeline):
    """`[{"translation_text": ...}]` per input.

    `src_lang` / `tgt_lang` name language codes of multilingual tokenizers (mBART's `en_XX`, ...):
    the source is tokenized in `src_lang` and the decoder is made to start with `tgt_lang`'s token
    (`forced_bos_token_id`), as transformers does. A task named `translation_xx_to_yy` uses T5's
    task_specific_params prefix for that pair.
    """

    return_name = "translation"

    def preprocess(self, texts: list[str], src_lang: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if src_lang is not None:
            if not hasattr(self.tokenizer, "src_lang"):
                raise ValueError(f"src_lang={src_lang!r}: this tokenizer has no language codes; drop src_lang.")
            self.tokenizer.src_lang = src_lang
        return super().preprocess(texts, **kwargs)

    def forward(self, batch: dict[str, Any], tgt_lang: str | None = None, **kwargs: Any) -> Any:
        if tgt_lang is not None and "forced_bos_token_id" not in kwargs:
            token = self.tokenizer.convert_tokens_to_ids(tgt_lang)
            if token is None or token == self.tokenizer.unk_token_id:
                raise ValueError(f"tgt_lang={tgt_lang!r} is not a token of this tokenizer: pass one of its "
                                 "language codes (e.g. 'fr_XX').")
            kwargs["forced_bos_token_id"] = token
        return super().forward(batch, **kwargs)


# --- the task table --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    pipeline: type[Pipeline]
    auto: str  # the registry's Auto task of the model it loads


TASKS: dict[str, Task] = {
    "text2text-generation": Task(Text2TextGenerationPipeline, "seq2seq-lm"),
    "summarization": Task(SummarizationPipeline, "seq2seq-lm"),
    "translation": Task(TranslationPipeline, "seq2seq-lm"),
}


def _task(name: str) -> Task:
    if name in TASKS:
        return TASKS[name]
    if name.startswith("translation_"):  # translation_en_to_fr
        return TASKS["translation"]
    raise ValueError(f"Unknown task {name!r}; flaxformers' pipelines are {sorted(TASKS)} (and translation_XX_to_YY).")


def pipeline(task: str, model: Any = None, tokenizer: Any = None, dtype: Any = None, **kwargs: Any) -> Pipeline:
    """The pipeline for `task`: `model` is a directory, Hub id or a loaded model; `tokenizer` defaults to the
    model's directory. Other keywords become the defaults of every call (e.g. `max_new_tokens=64`)."""
    spec = _task(task)
    if model is None:
        raise ValueError(f"pipeline({task!r}) needs model=: a model directory, a Hub id or a loaded model.")
    if isinstance(model, str | os.PathLike):
        from flaxformers.auto import AUTO_CLASSES

        if tokenizer is None:
            tokenizer = os.fspath(model)
        load = {"dtype": dtype} if dtype is not None else {}
        model = AUTO_CLASSES[spec.auto].from_pretrained(model, **load)
    if tokenizer is None:
        raise ValueError(f"pipeline({task!r}) got a loaded model: pass tokenizer= (an AutoTokenizer or a directory).")
    if isinstance(tokenizer, str | os.PathLike):
        from flaxformers.tokenizers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    return spec.pipeline(model, tokenizer, task, **kwargs)


__all__ = ["Pipeline", "SummarizationPipeline", "TASKS", "Text2TextGenerationPipeline", "TranslationPipeline",
           "pipeline"]

"""text2text-generation, summarization and translation: an encoder-decoder generates a text for each input.

Sources of a batch are right-padded and generated together; each row's result is what generating it
alone gives. A model config's `task_specific_params[task]` (T5's "summarize: " prefix and beam
settings) applies, as in transformers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Pipeline, map_batched

# The call options that are the pipeline's own; the others go to generate.
PIPELINE_OPTIONS = {"return_text", "return_tensors", "clean_up_tokenization_spaces", "truncation", "src_lang",
                    "tgt_lang"}


class Text2TextGenerationPipeline(Pipeline):
    """`pipe(text_or_texts, max_new_tokens=..., num_beams=..., ...)` -> `[{"generated_text": ...}]` per input
    (`generated_token_ids` with `return_tensors=True`)."""

    task = "text2text-generation"
    return_name = "generated"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        if not getattr(model, "is_seq2seq_lm", False):
            raise ValueError(f"{self.task} needs an encoder-decoder with a language-modeling head, got "
                             f"{type(model).__name__}; load it with FlaxAutoModelForSeq2SeqLM.")
        params = dict((getattr(model.config, "task_specific_params", None) or {}).get(self.task, {}))
        self.prefix = params.pop("prefix", "")
        super().__init__(model, tokenizer, batch_size=batch_size, **{**params, **options})

    def options(self, return_text: bool | None = None, return_tensors: bool | None = None,
                clean_up_tokenization_spaces: bool | None = None, truncation: bool | None = None,
                **generate_kwargs: Any) -> dict[str, Any]:
        return {"return_text": return_text, "return_tensors": return_tensors, "truncation": truncation,
                "clean_up_tokenization_spaces": clean_up_tokenization_spaces, **generate_kwargs}

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        options, batch_size = self._call_options(kwargs)
        if isinstance(inputs, str):
            return self._batch([inputs], options)[0]
        results = map_batched(lambda batch: self._batch(batch, options), list(inputs), batch_size)
        return [r[0] for r in results] if all(len(r) == 1 for r in results) else results

    def _encode(self, texts: list[str], options: dict[str, Any]) -> dict[str, np.ndarray]:
        truncation = bool(options.get("truncation"))
        limit = None
        if truncation:
            limit = self.tokenizer.model_max_length or getattr(self.model.config, "max_position_embeddings", None)
        return self.tokenizer([self.prefix + t for t in texts], padding=True, padding_side="right",
                              truncation=truncation, max_length=limit)

    def _generate(self, encoded: dict[str, np.ndarray], options: dict[str, Any]) -> np.ndarray:
        settings = {k: v for k, v in options.items() if k not in PIPELINE_OPTIONS}
        sequences = self.model.generate(encoded["input_ids"], attention_mask=encoded["attention_mask"],
                                        **settings).sequences
        return np.asarray(sequences).reshape(len(encoded["input_ids"]), -1, np.shape(sequences)[-1])

    def _batch(self, texts: list[str], options: dict[str, Any]) -> list[list[dict[str, Any]]]:
        rows = self._generate(self._encode(texts, options), options)
        results = []
        for per_input in rows:
            records = []
            for row in per_input:
                record: dict[str, Any] = {}
                if options.get("return_tensors"):
                    record[f"{self.return_name}_token_ids"] = row.tolist()
                if options.get("return_text", True):
                    record[f"{self.return_name}_text"] = self.tokenizer.decode(row, skip_special_tokens=True)
                records.append(record)
            results.append(records)
        return results


class SummarizationPipeline(Text2TextGenerationPipeline):
    """`[{"summary_text": ...}]` per input."""

    task = "summarization"
    return_name = "summary"


class TranslationPipeline(Text2TextGenerationPipeline):
    """`[{"translation_text": ...}]` per input.

    `src_lang` / `tgt_lang` name language codes of multilingual tokenizers (mBART's `en_XX`, ...): the
    source is tokenized in `src_lang` and the decoder starts with `tgt_lang`'s token
    (`forced_bos_token_id`), as transformers does.
    """

    task = "translation"
    return_name = "translation"

    def options(self, src_lang: str | None = None, tgt_lang: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return {"src_lang": src_lang, "tgt_lang": tgt_lang, **super().options(**kwargs)}

    def _encode(self, texts: list[str], options: dict[str, Any]) -> dict[str, np.ndarray]:
        if options.get("src_lang") is not None:
            if not hasattr(self.tokenizer, "src_lang"):
                raise ValueError(f"src_lang={options['src_lang']!r}: this tokenizer has no language codes; drop it.")
            self.tokenizer.src_lang = options["src_lang"]
        return super()._encode(texts, options)

    def _generate(self, encoded: dict[str, np.ndarray], options: dict[str, Any]) -> np.ndarray:
        tgt_lang = options.get("tgt_lang")
        if tgt_lang is not None and "forced_bos_token_id" not in options:
            token = self.tokenizer.convert_tokens_to_ids(tgt_lang)
            if token is None or token == self.tokenizer.unk_token_id:
                raise ValueError(f"tgt_lang={tgt_lang!r} is not a token of this tokenizer: pass one of its "
                                 "language codes (e.g. 'fr_XX').")
            options = {**options, "forced_bos_token_id": token}
        return super()._generate(encoded, options)

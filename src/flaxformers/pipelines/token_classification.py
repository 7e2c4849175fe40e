"""token-classification (alias ner): a label per token, or entities grouped by transformers' aggregation rules."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Forward, Pipeline, map_batched, softmax

STRATEGIES = ("none", "simple", "first", "average", "max")
WORD_STRATEGIES = ("first", "average", "max")  # these make every token of a word share one label


class TokenClassificationPipeline(Pipeline):
    """`pipe(text_or_texts, aggregation_strategy="none", ignore_labels=["O"], stride=None)`.

    Each text gives a list of `{"entity", "score", "index", "word", "start", "end"}` (one per token),
    or with an aggregation strategy `{"entity_group", "score", "word", "start", "end"}` (one per
    entity). `start`/`end` are character offsets into the text. Texts longer than the tokenizer's
    `model_max_length` are cut there, or with `stride` read in overlapping windows.
    `is_split_into_words=True` takes lists of words, joined by `delimiter` (" ").
    """

    task = "token-classification"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        super().__init__(model, tokenizer, batch_size=batch_size, **options)
        self._forward = Forward(model, ("logits",))
        # A WordPiece-style vocabulary marks word continuations ("##"): then a token is a subword when its
        # text differs from the characters it covers; otherwise the character before it decides.
        self._marks_subwords = bool(getattr(tokenizer.backend.model, "continuing_subword_prefix", None))

    def options(self, aggregation_strategy: str | None = None, ignore_labels: list[str] | None = None,
                stride: int | None = None, is_split_into_words: bool | None = None,
                delimiter: str | None = None) -> dict[str, Any]:
        strategy = None if aggregation_strategy is None else str(aggregation_strategy).lower()
        if strategy is not None and strategy not in STRATEGIES:
            raise ValueError(f"aggregation_strategy={aggregation_strategy!r}; expected one of {STRATEGIES}.")
        limit = self.tokenizer.model_max_length
        if stride is not None and limit is not None and stride >= limit:
            raise ValueError(f"stride={stride} must be less than the tokenizer's model_max_length={limit}.")
        return {"aggregation_strategy": strategy, "ignore_labels": ignore_labels, "stride": stride,
                "is_split_into_words": is_split_into_words, "delimiter": delimiter}

    def __call__(self, inputs: str | list, **kwargs: Any) -> Any:
        options, batch_size = self._call_options(kwargs)
        if options.get("stride") is not None and options.get("aggregation_strategy", "none") == "none":
            raise ValueError('stride= reads overlapping windows and merges their entities, which needs an '
                             'aggregation_strategy other than "none" (e.g. "simple").')
        if isinstance(inputs, str):
            return self._batch([inputs], options)[0]
        if options.get("is_split_into_words") and isinstance(inputs, list | tuple) and inputs and isinstance(inputs[0], str):
            inputs = [inputs]  # one list of words; transformers returns a list holding its one result
        return map_batched(lambda batch: self._batch(batch, options), inputs, batch_size)

    # --- one batch -------------------------------------------------------------------------------
    def _batch(self, items: list[Any], options: dict[str, Any]) -> list[list[dict[str, Any]]]:
        split = bool(options.get("is_split_into_words"))
        delimiter = options.get("delimiter", " ")
        for item in items:
            if split != (isinstance(item, list | tuple) and all(isinstance(w, str) for w in item)):
                raise ValueError("With is_split_into_words=True each input is a list of words; otherwise a string. "
                                 f"Got {type(item).__name__}.")
        limit = self.tokenizer.model_max_length
        stride = options.get("stride")
        encoded = self.tokenizer([list(item) for item in items] if split else items, padding=True,
                                 padding_side="right", truncation=limit is not None, max_length=limit,
                                 stride=stride or 0, return_overflowing_tokens=stride is not None and limit is not None,
                                 is_split_into_words=split, return_special_tokens_mask=True,
                                 return_offsets_mapping=True)
        (logits,) = self._forward(encoded, self.tokenizer.pad_token_id)  # [W, T', C] (a row per window)
        samples = encoded.get("overflow_to_sample_mapping", np.arange(len(items)))
        results = []
        for index, item in enumerate(items):
            sentence = delimiter.join(item) if split else item
            word_starts = np.cumsum([0] + [len(w) + len(delimiter) for w in item])[:-1] if split else None
            entities = []
            windows = np.flatnonzero(samples == index)
            for window in windows:
                tokens = self._tokens(sentence, encoded, window, softmax(logits[window]), word_starts, options)
                entities += [e for e in self._aggregate(tokens, options.get("aggregation_strategy", "none"))
                             if e.get("entity", e.get("entity_group")) not in options.get("ignore_labels", ["O"])]
            results.append(_merge_overlapping(entities) if len(windows) > 1 else entities)
        return results

    def _tokens(self, sentence: str, encoded: Any, row: int, scores: np.ndarray, word_starts: np.ndarray | None,
                options: dict[str, Any]) -> list[dict[str, Any]]:
        """The non-special tokens of a window: word, scores, character span and whether it continues a word."""
        strategy = options.get("aggregation_strategy", "none")
        words = encoded.word_ids(row) if word_starts is not None else None
        tokens = []
        for index, token_id in enumerate(encoded.encodings[row].ids):
            if encoded["special_tokens_mask"][row, index]:
                continue
            start, end = (int(x) for x in encoded["offset_mapping"][row, index])
            if words is not None and words[index] is not None:  # offsets count from the word's own start
                start, end = start + int(word_starts[words[index]]), end + int(word_starts[words[index]])
            word, text = self.tokenizer.convert_ids_to_tokens(token_id), sentence[start:end]
            if self._marks_subwords:
                is_subword = len(word) != len(text)
            else:
                if strategy in WORD_STRATEGIES:
                    warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning,
                                  stacklevel=4)
                is_subword = start > 0 and " " not in sentence[start - 1:start + 1]
            if token_id == self.tokenizer.unk_token_id:
                word, is_subword = text, False
            tokens.append({"word": word, "scores": scores[index], "start": start, "end": end, "index": index,
                           "is_subword": is_subword})
        return tokens

    # --- aggregation, as transformers does it ----------------------------------------------------
    def _aggregate(self, tokens: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        id2label = self.model.config.id2label
        if strategy in ("none", "simple"):
            entities = []
            for token in tokens:
                best = int(token["scores"].argmax())
                entities.append({"entity": id2label[best], "score": float(token["scores"][best]),
                                 "index": token["index"], "word": token["word"], "start": token["start"],
                                 "end": token["end"]})
        else:
            entities = [self._word_entity(word, strategy) for word in _words(tokens)]
        return entities if strategy == "none" else self._group(entities)

    def _word_entity(self, tokens: list[dict[str, Any]], strategy: str) -> dict[str, Any]:
        """One entity for the tokens of one word: the first token's label, the most confident token's, or the
        label of the averaged scores."""
        if strategy == "first":
            scores = tokens[0]["scores"]
        elif strategy == "max":
            scores = max(tokens, key=lambda t: t["scores"].max())["scores"]
        else:
            scores = np.nanmean(np.stack([t["scores"] for t in tokens]), axis=0)
        best = int(scores.argmax())
        return {"entity": self.model.config.id2label[best], "score": float(scores[best]),
                "word": self.tokenizer.convert_tokens_to_string([t["word"] for t in tokens]),
                "start": tokens[0]["start"], "end": tokens[-1]["end"]}

    def _group(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Adjacent entities of one tag form a group; a B- tag starts a new one."""
        groups: list[list[dict[str, Any]]] = []
        for entity in entities:
            bi, tag = _tag(entity["entity"])
            if groups and bi != "B" and tag == _tag(groups[-1][-1]["entity"])[1]:
                groups[-1].append(entity)
            else:
                groups.append([entity])
        return [{"entity_group": group[0]["entity"].split("-", 1)[-1],
                 "score": float(np.nanmean(np.asarray([e["score"] for e in group], np.float32))),
                 "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in group]),
                 "start": group[0]["start"], "end": group[-1]["end"]} for group in groups]


def _words(tokens: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Tokens gathered by word: a subword joins the word before it."""
    words: list[list[dict[str, Any]]] = []
    for token in tokens:
        if words and token["is_subword"]:
            words[-1].append(token)
        else:
            words.append([token])
    return words


def _tag(label: str) -> tuple[str, str]:
    """("B" or "I", tag) of a label: "B-PER" -> ("B", "PER"); a label without a prefix counts as inside."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _merge_overlapping(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities from overlapping windows: of those that overlap, keep the longest (then the most confident)."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda e: e["start"])
    kept, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            kept.append(previous)
            previous = entity
    kept.append(previous)
    return kept


__all__ = ["TokenClassificationPipeline"]

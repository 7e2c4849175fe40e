"""question-answering: the span of a context that answers a question, as transformers 4.x's pipeline finds it.

A context too long for `max_seq_len` tokens is read in windows that overlap by `doc_stride` tokens.
In each window the start and end logits become probabilities over the context tokens; a span's
score is P(start) * P(end), for spans of at most `max_answer_len` tokens. Answers are mapped back
to characters of the context (whole words with `align_to_words`), and the same answer text found in
several windows adds up its scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Forward, Pipeline, map_batched

MASKED_LOGIT = -10000.0  # what a token outside the context gets before the softmax
NO_NULL_SCORE = 1000000.0  # the "no answer" score before any window is seen


class QuestionAnsweringPipeline(Pipeline):
    """`pipe(question=..., context=...)` (strings or lists), `pipe({"question", "context"})` or a list of such
    dicts -> `{"score", "start", "end", "answer"}` per question (a list of them with `top_k` > 1)."""

    task = "question-answering"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        super().__init__(model, tokenizer, batch_size=batch_size, **options)
        self._forward = Forward(model, ("start_logits", "end_logits"))

    def options(self, top_k: int | None = None, doc_stride: int | None = None, max_answer_len: int | None = None,
                max_seq_len: int | None = None, handle_impossible_answer: bool | None = None,
                align_to_words: bool | None = None) -> dict[str, Any]:
        for name, value in (("top_k", top_k), ("max_answer_len", max_answer_len)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r}; expected an int >= 1.")
        return {"top_k": top_k, "doc_stride": doc_stride, "max_answer_len": max_answer_len, "max_seq_len": max_seq_len,
                "handle_impossible_answer": handle_impossible_answer, "align_to_words": align_to_words}

    def __call__(self, *args: Any, question: str | list[str] | None = None, context: str | list[str] | None = None,
                 **kwargs: Any) -> Any:
        options, batch_size = self._call_options(kwargs)
        examples = _examples(args, question, context)
        if isinstance(examples, list) and len(examples) == 1:
            return self._batch(examples, options)[0]
        return map_batched(lambda batch: self._batch(batch, options), examples, batch_size)

    # --- one batch -------------------------------------------------------------------------------
    def _batch(self, examples: list[dict[str, str]], options: dict[str, Any]) -> list[Any]:
        tokenizer = self.tokenizer
        max_seq_len = options.get("max_seq_len") or min(tokenizer.model_max_length or 384, 384)
        doc_stride = options.get("doc_stride", min(max_seq_len // 2, 128))
        if doc_stride > max_seq_len:
            raise ValueError(f"doc_stride={doc_stride} is larger than max_seq_len={max_seq_len}; lower doc_stride.")
        # Right-padding tokenizers put the question first, as transformers does.
        question_first = tokenizer.padding_side == "right"
        questions = [example["question"] for example in examples]
        contexts = [example["context"] for example in examples]
        encoded = tokenizer(questions if question_first else contexts, contexts if question_first else questions,
                            padding=True, padding_side="right", max_length=max_seq_len, stride=doc_stride,
                            truncation="only_second" if question_first else "only_first",
                            return_overflowing_tokens=True, return_token_type_ids=True)
        start_logits, end_logits = self._forward(encoded, tokenizer.pad_token_id)  # [W, T'] each
        samples = encoded["overflow_to_sample_mapping"]
        results = []
        for index, example in enumerate(examples):
            windows = [(encoded.encodings[w], encoded.sequence_ids(w), start_logits[w], end_logits[w])
                       for w in np.flatnonzero(samples == index)]
            results.append(self._answers(example["context"], windows, question_first, options))
        return results

    def _answers(self, context: str, windows: list, question_first: bool, options: dict[str, Any]) -> Any:
        top_k = options.get("top_k", 1)
        impossible = bool(options.get("handle_impossible_answer", False))
        align = options.get("align_to_words", True)
        null_score, answers = NO_NULL_SCORE, []
        for encoding, sequence_ids, start_logits, end_logits in windows:
            length = len(encoding.ids)
            # Context tokens (and the classifier token) may hold the answer; with the context first, every token may.
            allowed = np.array([s == 1 for s in sequence_ids] if question_first else [True] * length)
            if self.tokenizer.cls_token_id is not None:
                allowed |= np.asarray(encoding.ids) == self.tokenizer.cls_token_id
            start = _probabilities(start_logits[:length], allowed)
            end = _probabilities(end_logits[:length], allowed)
            if impossible:
                null_score = min(null_score, float(start[0] * end[0]))
            start[0] = end[0] = 0.0
            # Words may lose candidates when aligned, so look further than top_k.
            candidates = top_k * 2 + 10 if align else top_k
            for s, e, score in zip(*_best_spans(start, end, allowed, candidates, options.get("max_answer_len", 15))):
                first, last = _char_span(encoding, int(s), int(e), 1 if question_first else 0, align)
                text = context[first:last]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += float(score)
                else:
                    answers.append({"score": float(score), "start": first, "end": last, "answer": text})
        if impossible:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def _probabilities(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Softmax over the allowed tokens (the others get MASKED_LOGIT), in float32 as transformers computes it."""
    logits = np.where(allowed, logits.astype(np.float32), np.float32(MASKED_LOGIT))
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def _best_spans(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, top_k: int,
                max_answer_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `top_k` (start, end, score) spans with start <= end < start + max_answer_len, best first, on allowed tokens."""
    scores = np.tril(np.triu(start[:, None] * end[None, :]), max_answer_len - 1)  # [T, T]
    flat = scores.ravel()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif flat.size < top_k:
        order = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, top_k)[:top_k]
        order = best[np.argsort(-flat[best])]
    starts, ends = np.unravel_index(order, scores.shape)
    # transformers tests membership against np.nonzero of a [1, T] mask, whose row indices admit token 0 too.
    positions = np.flatnonzero(allowed)
    positions = np.union1d(positions, [0]) if positions.size else positions
    keep = np.isin(starts, positions) & np.isin(ends, positions)
    return starts[keep], ends[keep], scores[starts[keep], ends[keep]]


def _char_span(encoding: Any, start: int, end: int, sequence: int, align_to_words: bool) -> tuple[int, int]:
    """Characters of the context that tokens start..end cover: from the start of the first word to the end of the
    last with `align_to_words`, else the tokens' own offsets (also for tokens outside any word)."""
    if align_to_words:
        first, last = encoding.token_to_word(start), encoding.token_to_word(end)
        if first is not None and last is not None:
            first_chars = encoding.word_to_chars(first, sequence)
            last_chars = encoding.word_to_chars(last, sequence)
            if first_chars is not None and last_chars is not None:
                return first_chars[0], last_chars[1]
    return encoding.offsets[start][0], encoding.offsets[end][1]


def _examples(args: tuple, question: Any, context: Any) -> list[dict[str, str]] | Any:
    """The questions as {"question", "context"} dicts, from any of the forms transformers accepts."""
    if args and (question is not None or context is not None):
        raise ValueError("Pass the questions either positionally or as question=/context=, not both.")
    if question is not None or context is not None:
        if question is None or context is None:
            raise ValueError("question-answering needs both question= and context=.")
        if isinstance(question, str) and isinstance(context, str):
            items = [{"question": question, "context": context}]
        elif isinstance(question, list) and isinstance(context, str):
            items = [{"question": q, "context": context} for q in question]
        elif isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise ValueError(f"{len(question)} questions but {len(context)} contexts; pass one context per "
                                 "question, or one context for all.")
            items = [{"question": q, "context": c} for q, c in zip(question, context)]
        else:
            raise ValueError("question= and context= take strings, or a list of questions with one context or a "
                             "list of contexts.")
    elif len(args) == 2 and all(isinstance(a, str) for a in args):
        items = [{"question": args[0], "context": args[1]}]
    elif len(args) == 1:
        items = args[0]
        if isinstance(items, dict):
            items = [items]
        elif not isinstance(items, list | tuple):
            return (_example(item) for item in items)  # a generator: answered lazily
    else:
        raise ValueError("question-answering takes question= and context=, a {'question', 'context'} dict, or a "
                         "list of such dicts.")
    return [_example(item) for item in items]


def _example(item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        raise ValueError(f"Each question is a dict with 'question' and 'context'; got {type(item).__name__}.")
    for key in ("question", "context"):
        if key not in item:
            raise KeyError(f"A question dict needs the keys 'question' and 'context'; {key!r} is missing.")
        if not isinstance(item[key], str) or not item[key]:
            raise ValueError(f"{key!r} must be a non-empty string, got {item[key]!r}.")
    return {"question": item["question"], "context": item["context"]}


__all__ = ["QuestionAnsweringPipeline"]

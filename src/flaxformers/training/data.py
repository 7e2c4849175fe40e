"""Fine-tuning data: read a file, turn it into fixed-shape numpy arrays for a task, batch it.

Files: `.txt` (one text per line), `.jsonl`, `.json` (a list of records), `.csv` / `.tsv`.
Records may be pre-tokenized (`input_ids`, and the task's label keys), then no tokenizer is needed.
Otherwise the task reads these fields:

| task | fields |
|---|---|
| causal-lm, masked-lm | `text` (texts are joined and cut in blocks of `max_length`) |
| sequence-classification | `text` (or `sentence1`), optional `text_pair` (or `sentence2`), `label`: int, str, float (regression) or list (multi-label) |
| token-classification | `tokens` (words), `tags` (or `labels`, `ner_tags`): one int or str per word |
| question-answering | `question`, `context`, `answers` = {`text`: [...], `answer_start`: [...]} or `answer_text` + `answer_start` |
| multiple-choice | `context` (or `sent1`), `choices` (list of str), `label` |
| seq2seq-lm | `source` (or `text`), `target` (or `summary`); pre-tokenized: `input_ids` and `labels` |

seq2seq-lm labels are the target's tokens, padded with -100; the train step makes the decoder inputs
from them (shifted right after the decoder start token), as transformers does.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np

from flaxformers.training.losses import IGNORE_INDEX

TASK_NAMES = ("causal-lm", "masked-lm", "sequence-classification", "token-classification",
              "question-answering", "multiple-choice", "seq2seq-lm")


class Records(list):
    """The records of a data file, with where each one is in it, for error messages."""

    def __init__(self, records: list[dict[str, Any]], path: str, places: list[str]):
        super().__init__(records)
        self.path, self.places = path, places

    def where(self, i: int) -> str:
        return f"{self.path}, {self.places[i]}"


def read_records(path: str | os.PathLike) -> Records:
    """Records of a .txt, .jsonl, .json, .csv or .tsv file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"Data file {path!r} does not exist.")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".txt", ".jsonl", ".json", ".csv", ".tsv"):
        raise ValueError(f"Don't know how to read {path!r}: use .txt, .jsonl, .json, .csv or .tsv.")
    records: list[Any] = []
    places: list[str] = []
    with open(path, encoding="utf-8") as f:
        if ext in (".csv", ".tsv"):
            reader = csv.DictReader(f, delimiter="\t" if ext == ".tsv" else ",")
            for row in reader:
                records.append(row)
                places.append(f"line {reader.line_num}")
        elif ext == ".json":
            data = _json(f.read(), path)
            records = data if isinstance(data, list) else data.get("data") if isinstance(data, dict) else None
            if not isinstance(records, list):
                raise ValueError(f"{path} holds no list of records: expected [{{...}}, ...] or {{\"data\": [...]}}.")
            places = [f"record {i + 1}" for i in range(len(records))]
        else:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    records.append({"text": line.rstrip("\n")} if ext == ".txt" else _json(line, f"{path}, line {number}"))
                    places.append(f"line {number}")
    for record, place in zip(records, places):
        if not isinstance(record, dict):
            raise ValueError(f"{path}, {place}: a record must be a JSON object with named fields, got {record!r:.80}.")
    return Records(records, path, places)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON ({e.msg}, column {e.colno}).") from None


# The fields each task reads from a text record ("a|b": either name; "?": optional), and their kinds.
TASK_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "causal-lm": (("text", "str"),),
    "masked-lm": (("text", "str"),),
    "sequence-classification": (("text|sentence1|sentence", "str"), ("text_pair|sentence2?", "str"),
                                ("label", "label")),
    "token-classification": (("tokens", "list[str]"), ("tags|labels|ner_tags", "list[label]")),
    "question-answering": (("question", "str"), ("context", "str"),
                           ("answers|answer_text", "answers")),
    "multiple-choice": (("context|sent1|question", "str"), ("choices", "list[str]"), ("label", "int")),
    "seq2seq-lm": (("source|text", "str"), ("target|summary", "str")),
}
# A pre-tokenized record (it has `input_ids`) needs only the task's labels besides.
PRETOKENIZED_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "sequence-classification": (("label", "label"),),
    "token-classification": (("labels|tags|ner_tags", "list[label]"),),
    "question-answering": (("start_positions", "int"), ("end_positions", "int")),
    "multiple-choice": (("label", "int"),),
    "seq2seq-lm": (("labels", "list[int]"),),
}


def fields_help() -> str:
    """The fields of each task, for `flaxformers finetune --help`."""
    lines = ["fields each task reads from a record (a|b: either name; ?: optional):"]
    for task, fields in TASK_FIELDS.items():
        lines.append(f"  {task:<24} " + ", ".join(f"{names} ({kind})" for names, kind in fields))
    lines.append("  label: an int, str, float (regression) or a list of numbers (multi-label); answers: "
                 '{"text": [str], "answer_start": [int]}, or answer_text (str) with answer_start (int)')
    lines.append("  pre-tokenized records: input_ids (list[int]), optional attention_mask and token_type_ids, and "
                 "the task's labels:")
    lines += [f"  {t:<24} " + ", ".join(n for n, _ in f) for t, f in PRETOKENIZED_FIELDS.items()]
    return "\n".join(lines)


def _is_kind(value: Any, kind: str) -> bool:
    number = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
    label = lambda v: number(v) or isinstance(v, str)  # noqa: E731
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, str) and value.strip().isdigit()
    if kind == "label":  # int, str, float (regression) or a list (multi-label)
        return label(value) or isinstance(value, list) and all(number(v) for v in value)
    if kind == "answers":  # {"text": [...], "answer_start": [...]} (or answer_text + answer_start)
        return (isinstance(value, dict) and isinstance(value.get("text"), list) and value["text"]
                and isinstance(value["text"][0], str) and isinstance(value.get("answer_start"), list)
                and value["answer_start"] and _is_kind(value["answer_start"][0], "int"))
    inner = kind.removeprefix("list[").removesuffix("]")
    return isinstance(value, list) and all(_is_kind(v, inner) if inner != "label" else label(v) for v in value)


def check_records(task: str, records: list[dict[str, Any]]) -> None:
    """A clear error, naming the file, the line and the field, for a record the task cannot read."""
    where = records.where if isinstance(records, Records) else (lambda i: f"record {i + 1}")
    for i, record in enumerate(records):
        pretokenized = "input_ids" in record
        if pretokenized != ("input_ids" in records[0]):
            raise ValueError(f"{where(i)}: {'has' if pretokenized else 'lacks'} the field 'input_ids', unlike the "
                             "first record: a data file holds either text or pre-tokenized records.")
        fields = PRETOKENIZED_FIELDS.get(task, ()) if pretokenized else TASK_FIELDS[task]
        if pretokenized and not _is_kind(record["input_ids"], "list[int]") and not (
                task == "multiple-choice" and _is_kind(record["input_ids"], "list[list[int]]")):
            raise ValueError(f"{where(i)}: the field 'input_ids' must be a list of token ids, got "
                             f"{record['input_ids']!r:.60}.")
        for names, kind in fields:
            optional = names.endswith("?")
            present = [n for n in names.rstrip("?").split("|") if record.get(n) is not None]
            if not present:
                if optional:
                    continue
                raise ValueError(f"{where(i)}: the {task} record lacks the field {names.replace('|', ' (or ')!r}"
                                 f"{')' * names.count('|')}. See `flaxformers finetune --help` for each task's fields.")
            if names == "answers|answer_text" and present[0] == "answer_text":
                kind, extra = "str", record.get("answer_start")
                if not _is_kind(extra, "int"):
                    raise ValueError(f"{where(i)}: the field 'answer_start' must be an int (a character offset "
                                     f"into the context), got {extra!r:.60}.")
            if not _is_kind(record[present[0]], kind):
                raise ValueError(f"{where(i)}: the field {present[0]!r} must be {_KIND_NAMES.get(kind, kind)}, "
                                 f"got {type(record[present[0]]).__name__} {record[present[0]]!r:.60}.")


_KIND_NAMES = {"str": "a string", "int": "an int", "label": "a label (int, str, float or a list of numbers)",
               "answers": '{"text": [str], "answer_start": [int]}', "list[str]": "a list of strings",
               "list[label]": "a list of labels (int or str)"}


def _pad(rows: list[list[Any]], width: int, value: Any, dtype: Any = np.int32) -> np.ndarray:
    out = np.full((len(rows), width), value, dtype=dtype)
    for i, row in enumerate(rows):
        row = list(row)[:width]
        out[i, : len(row)] = row
    return out


def _pad_id(tokenizer: Any, config: Any) -> int:
    for candidate in (getattr(tokenizer, "pad_token_id", None), getattr(config, "pad_token_id", None),
                      getattr(tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None)):
        if isinstance(candidate, int):
            return candidate
    return 0


def _need_tokenizer(tokenizer: Any, task: str) -> None:
    if tokenizer is None:
        raise ValueError(f"The {task} data is text, but the model directory has no tokenizer: add tokenizer files, "
                         "pass --tokenizer, or give pre-tokenized records with input_ids.")


# --- per task ----------------------------------------------------------------------------------------
def _lm_blocks(records, tokenizer, config, max_length):
    if "input_ids" in records[0]:
        stream = [int(t) for r in records for t in r["input_ids"]]
    else:
        _need_tokenizer(tokenizer, "language-model")
        eos = tokenizer.eos_token_id
        stream = []
        for r in records:
            stream += tokenizer.encode(r["text"], add_special_tokens=False) + ([eos] if eos is not None else [])
    n = len(stream) // max_length
    if n == 0:
        raise ValueError(f"The text has {len(stream)} tokens, fewer than one block of max_length={max_length}; "
                         "use more text or a smaller --max-length.")
    ids = np.asarray(stream[: n * max_length], dtype=np.int32).reshape(n, max_length)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _pretokenized(records, pad_id, max_length):
    width = min(max_length, max(len(r["input_ids"]) for r in records))
    out = {"input_ids": _pad([r["input_ids"] for r in records], width, pad_id)}
    out["attention_mask"] = _pad([r.get("attention_mask", [1] * len(r["input_ids"])) for r in records], width, 0)
    if "token_type_ids" in records[0]:
        out["token_type_ids"] = _pad([r["token_type_ids"] for r in records], width, 0)
    return out, width


def _label_ids(values: list[Any], config: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Sequence labels -> an array, plus what the config must say (num_labels, problem_type, id2label)."""
    first = values[0]
    if isinstance(first, list):
        return np.asarray(values, dtype=np.float32), {"num_labels": len(first),
                                                      "problem_type": "multi_label_classification"}
    if isinstance(first, float) or (isinstance(first, str) and _is_float(first) and not first.strip().isdigit()):
        return np.asarray(values, dtype=np.float32), {"num_labels": 1, "problem_type": "regression"}
    if isinstance(first, str) and not first.strip().lstrip("-").isdigit():
        known = dict(config.label2id) if set(values) <= set(config.label2id) else None
        label2id = known or {name: i for i, name in enumerate(sorted(set(values)))}
        return (np.asarray([label2id[v] for v in values], dtype=np.int32),
                {"num_labels": len(label2id), "id2label": {i: n for n, i in label2id.items()}})
    ints = np.asarray([int(v) for v in values], dtype=np.int32)
    return ints, {"num_labels": max(int(ints.max()) + 1, config.num_labels)}


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _text(record: dict[str, Any], *names: str) -> str | None:
    return next((record[n] for n in names if record.get(n) is not None), None)


def _sequence_classification(records, tokenizer, config, max_length, pad_id):
    labels, info = _label_ids([r["label"] for r in records], config)
    if "input_ids" in records[0]:
        arrays, _ = _pretokenized(records, pad_id, max_length)
    else:
        _need_tokenizer(tokenizer, "sequence-classification")
        texts = [_text(r, "text", "sentence1", "sentence") for r in records]
        pairs = [_text(r, "text_pair", "sentence2") for r in records]
        arrays = tokenizer(texts, pairs if all(p is not None for p in pairs) else None, padding="max_length",
                           truncation=True, max_length=max_length)
    return {**arrays, "labels": labels}, info


def _token_classification(records, tokenizer, config, max_length, pad_id):
    tag_key = next(k for k in ("labels", "tags", "ner_tags") if k in records[0])
    tags = [r[tag_key] for r in records]
    names = sorted({t for row in tags for t in row if isinstance(t, str)})
    label2id = dict(config.label2id) if names and set(names) <= set(config.label2id) else {n: i for i, n in enumerate(names)}
    to_id = lambda t: label2id[t] if isinstance(t, str) else int(t)  # noqa: E731
    if "input_ids" in records[0]:
        arrays, width = _pretokenized(records, pad_id, max_length)
        arrays["labels"] = _pad([[to_id(t) for t in row] for row in tags], width, IGNORE_INDEX)
    else:
        _need_tokenizer(tokenizer, "token-classification")
        ids, aligned = [], []
        for words, row in zip((r["tokens"] for r in records), tags):
            enc = tokenizer.backend.encode(words, is_pretokenized=True)
            previous, labels = None, []
            for word in enc.word_ids:  # the first sub-token of a word carries its tag
                labels.append(IGNORE_INDEX if word is None or word == previous else to_id(row[word]))
                previous = word
            ids.append(enc.ids[:max_length])
            aligned.append(labels[:max_length])
        arrays = {"input_ids": _pad(ids, max_length, pad_id), "attention_mask": _pad([[1] * len(i) for i in ids],
                                                                                        max_length, 0)}
        arrays["labels"] = _pad(aligned, max_length, IGNORE_INDEX)
        if tokenizer.uses_token_types:
            arrays["token_type_ids"] = np.zeros_like(arrays["input_ids"])
    num = max(int(arrays["labels"].max()) + 1, config.num_labels)
    info = {"num_labels": num} if not names else {"num_labels": len(label2id),
                                                  "id2label": {i: n for n, i in label2id.items()}}
    return arrays, info


def _question_answering(records, tokenizer, config, max_length, pad_id):
    if "input_ids" in records[0]:
        arrays, _ = _pretokenized(records, pad_id, max_length)
        arrays["start_positions"] = np.asarray([r["start_positions"] for r in records], np.int32)
        arrays["end_positions"] = np.asarray([r["end_positions"] for r in records], np.int32)
        return arrays, {}
    _need_tokenizer(tokenizer, "question-answering")
    ids, types, starts, ends = [], [], [], []
    for r in records:
        answers = r.get("answers") or {"text": [r["answer_text"]], "answer_start": [r["answer_start"]]}
        char_start = int(answers["answer_start"][0])
        char_end = char_start + len(answers["text"][0])
        enc = tokenizer.backend.encode(r["question"], r["context"])
        start = end = 0  # not in the (truncated) context: point at the first token, as transformers does
        for i, (seq, (a, b)) in enumerate(zip(enc.sequence_ids, enc.offsets)):
            if seq != 1 or i >= max_length:
                continue
            if a <= char_start < b or (start == 0 and a >= char_start and a < char_end):
                start = i
            if a < char_end <= b:
                end = i
        if end < start:
            start = end = 0
        ids.append(enc.ids[:max_length])
        types.append(enc.type_ids[:max_length])
        starts.append(start)
        ends.append(end)
    arrays = {"input_ids": _pad(ids, max_length, pad_id), "attention_mask": _pad([[1] * len(i) for i in ids],
                                                                                    max_length, 0)}
    if tokenizer.uses_token_types:
        arrays["token_type_ids"] = _pad(types, max_length, 0)
    arrays["start_positions"] = np.asarray(starts, np.int32)
    arrays["end_positions"] = np.asarray(ends, np.int32)
    return arrays, {}


def _multiple_choice(records, tokenizer, config, max_length, pad_id):
    labels = np.asarray([int(r["label"]) for r in records], np.int32)
    if "input_ids" in records[0]:  # [C][T] per record
        choices = len(records[0]["input_ids"])
        flat = [{k: r[k][c] for k in r if k not in ("label",)} for r in records for c in range(choices)]
        arrays, width = _pretokenized(flat, pad_id, max_length)
    else:
        _need_tokenizer(tokenizer, "multiple-choice")
        choices = len(records[0]["choices"])
        contexts = [_text(r, "context", "sent1", "question") for r in records for _ in range(choices)]
        options = [c for r in records for c in r["choices"]]
        arrays = tokenizer(contexts, options, padding="max_length", truncation=True, max_length=max_length)
        width = max_length
    arrays = {k: v.reshape(len(records), choices, width) for k, v in arrays.items()}
    return {**arrays, "labels": labels}, {}


def _seq2seq(records, tokenizer, config, max_length, pad_id, max_target_length=None):
    target_width = max_target_length or max_length
    if "input_ids" in records[0]:
        arrays, _ = _pretokenized(records, pad_id, max_length)
        return {**arrays, "labels": _pad([r["labels"] for r in records], target_width, IGNORE_INDEX)}, {}
    _need_tokenizer(tokenizer, "seq2seq-lm")
    sources = [_text(r, "source", "text") for r in records]
    targets = [_text(r, "target", "summary") for r in records]
    arrays = tokenizer(sources, padding="max_length", truncation=True, max_length=max_length)
    labels = tokenizer(text_target=targets, padding="max_length", truncation=True, max_length=target_width)
    ids = labels["input_ids"].astype(np.int32)
    return {"input_ids": arrays["input_ids"], "attention_mask": arrays["attention_mask"],
            "labels": np.where(labels["attention_mask"] > 0, ids, IGNORE_INDEX)}, {}


def build_dataset(task: str, records: list[dict[str, Any]], tokenizer: Any, config: Any,
                  max_length: int, max_target_length: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays [N, ...] for `task`, and the config keys the data implies (num_labels, ...)."""
    if not records:
        raise ValueError(f"{getattr(records, 'path', 'The data file')} holds no records.")
    if task not in TASK_FIELDS:
        raise ValueError(f"--task {task!r} is not one of {list(TASK_NAMES)}.")
    check_records(task, records)
    pad_id = _pad_id(tokenizer, config)
    if task in ("causal-lm", "masked-lm"):
        arrays = _lm_blocks(records, tokenizer, config, max_length)
        if task == "causal-lm":  # the loss shifts them; masked-lm labels are drawn per batch (mask_tokens)
            arrays["labels"] = arrays["input_ids"].copy()
        return arrays, {}
    builders = {
        "sequence-classification": _sequence_classification,
        "token-classification": _token_classification,
        "question-answering": _question_answering,
        "multiple-choice": _multiple_choice,
        "seq2seq-lm": partial(_seq2seq, max_target_length=max_target_length),
    }
    return builders[task](records, tokenizer, config, max_length, pad_id)


# --- batches -----------------------------------------------------------------------------------------
def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    return num_examples // batch_size


def batch_at(arrays: dict[str, np.ndarray], step: int, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """The batch of global step `step`: epoch e shuffles with seed + e, so a resumed run sees the same data."""
    n = len(next(iter(arrays.values())))
    per_epoch = steps_per_epoch(n, batch_size)
    if per_epoch == 0:
        raise ValueError(f"{n} examples are fewer than one batch of {batch_size}; lower --batch-size.")
    epoch, index = divmod(step, per_epoch)
    order = np.random.RandomState(seed + epoch).permutation(n)
    rows = order[index * batch_size:(index + 1) * batch_size]
    return {k: v[rows] for k, v in arrays.items()}


def eval_batches(arrays: dict[str, np.ndarray], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """In order, full batches only (shapes stay static: one compile)."""
    n = len(next(iter(arrays.values())))
    for start in range(0, n - batch_size + 1, batch_size):
        yield {k: v[start:start + batch_size] for k, v in arrays.items()}


def mask_tokens(input_ids: np.ndarray, rng: np.random.RandomState, mask_id: int, vocab_size: int,
                special_ids: set[int], probability: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking: 15% of tokens are scored; of those 80% become [MASK], 10% random, 10% kept."""
    labels = input_ids.copy()
    candidates = ~np.isin(input_ids, list(special_ids))
    scored = (rng.random_sample(input_ids.shape) < probability) & candidates
    labels[~scored] = IGNORE_INDEX
    ids = input_ids.copy()
    replace = scored & (rng.random_sample(input_ids.shape) < 0.8)
    ids[replace] = mask_id
    randomize = scored & ~replace & (rng.random_sample(input_ids.shape) < 0.5)
    ids[randomize] = rng.randint(0, vocab_size, size=int(randomize.sum()))
    return ids, labels

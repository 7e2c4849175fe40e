"""Every pipeline against transformers' on the same weights: the same outputs, the same shapes.

Tiny random models (2 layers, hidden 32) are saved by transformers' PyTorch classes with real
tokenizers (all-MiniLM-L6-v2's WordPiece vocabulary, GPT-2's byte-level BPE); feature extraction and
sentence embeddings run the real all-MiniLM-L6-v2. The reference is transformers 5's pipeline, and
for question-answering (which transformers 5 removed) transformers 4.57.6's, run in a subprocess.
Each pipeline is built once per module, so each forward compiles once per shape.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close, gpt2_tokenizer_dir

import flaxformers
from flaxformers.defaults import embed_model_dir
from flaxformers.pipelines import TASKS, check_task, pipeline
from flaxformers.pipelines.text_generation import TextGenerationPipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF457_SITE = os.path.join(ROOT, ".venv-tf457", "lib", "python3.11", "site-packages")
TINY_BERT = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                 max_position_embeddings=64, initializer_range=0.5)  # wide weights: well-separated scores
BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


# --- comparing outputs --------------------------------------------------------------------------
def _split(value, floats: list) -> object:
    """The output's structure with every float replaced by a marker; the floats go to `floats` in order."""
    if isinstance(value, dict):
        return {k: _split(v, floats) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_split(v, floats) for v in value]
    if isinstance(value, float | np.floating):
        floats.append(float(value))
        return "<float>"
    if isinstance(value, np.integer):
        return int(value)
    return value


def assert_same(ours, ref, atol: float = 1e-4) -> None:
    """Equal keys, order, labels, tokens, strings and spans; floats within atol."""
    ours_floats, ref_floats = [], []
    assert _split(ours, ours_floats) == _split(ref, ref_floats)
    if ref_floats:
        assert_close(np.asarray(ours_floats), np.asarray(ref_floats), atol=atol, what="scores")


# --- models -------------------------------------------------------------------------------------
def _bert_checkpoint(directory, head: str, **config) -> str:
    """A tiny random BERT `head`, saved by transformers with the real MiniLM WordPiece tokenizer (max 32 tokens)."""
    minilm = embed_model_dir()
    for name in ("vocab.txt", "tokenizer.json"):
        shutil.copy(os.path.join(minilm, name), directory)
    with open(os.path.join(minilm, "tokenizer_config.json")) as f:
        tokenizer_config = {**json.load(f), "model_max_length": 32}
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config, f)
    torch.manual_seed(0)
    getattr(transformers, head)(transformers.BertConfig(**TINY_BERT, **config)).eval().save_pretrained(directory)
    return str(directory)


def _both(task: str, directory: str, **kwargs):
    """(ours, transformers') pipelines of `task` on one checkpoint."""
    return pipeline(task, model=directory, **kwargs), transformers.pipeline(task, model=directory, device="cpu")


@pytest.fixture(scope="module")
def fill_mask(tmp_path_factory):
    return _both("fill-mask", _bert_checkpoint(tmp_path_factory.mktemp("mlm"), "BertForMaskedLM"))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    labels = {"id2label": dict(enumerate(["negative", "neutral", "positive"]))}
    return _both("text-classification", _bert_checkpoint(tmp_path_factory.mktemp("cls"),
                                                         "BertForSequenceClassification", **labels))


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    labels = {"id2label": dict(enumerate(BIO))}
    return _both("token-classification", _bert_checkpoint(tmp_path_factory.mktemp("ner"),
                                                          "BertForTokenClassification", **labels))


@pytest.fixture(scope="module")
def minilm():
    """Real all-MiniLM-L6-v2, the default model of both tasks; transformers' feature extraction on it."""
    return (pipeline("feature-extraction"), pipeline("sentence-embeddings"),
            transformers.pipeline("feature-extraction", model=str(embed_model_dir()), device="cpu"))


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    """A tiny random GPT-2 with the real GPT-2 tokenizer and a chat template."""
    directory = tmp_path_factory.mktemp("gpt2")
    gpt2_tokenizer_dir(directory)
    with open(directory / "tokenizer_config.json", "w") as f:
        json.dump({"chat_template": CHAT_TEMPLATE, "model_max_length": 64}, f)
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, initializer_range=0.5)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(directory)
    return _both("text-generation", str(directory))


# --- text-generation ----------------------------------------------------------------------------
PROMPTS = ["Hello there, my friend", "The quick brown fox"]
GREEDY = {"max_new_tokens": 6, "do_sample": False}
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
PREFILL = [{"role": "user", "content": "Name a color."}, {"role": "assistant", "content": "The color is"}]


@pytest.mark.parametrize("inputs", [PROMPTS[0], PROMPTS, CHAT, [CHAT, PREFILL]],
                         ids=["string", "strings", "chat", "chats"])
@pytest.mark.parametrize("options", [{}, {"return_full_text": False}, {"return_tensors": True}],
                         ids=["full", "new", "tensors"])
def test_text_generation(generator, inputs, options):
    ours, ref = generator  # prompts of one length bucket: one compiled plan per batch size
    assert_same(ours(inputs, **GREEDY, **options), ref(inputs, **GREEDY, **options))


def test_text_generation_beams(generator):
    ours, ref = generator
    options = {**GREEDY, "num_beams": 2, "num_return_sequences": 2}
    assert_same(ours(PROMPTS, **options), ref(PROMPTS, **options))


def test_text_generation_sampling_and_defaults(generator):
    ours, _ = generator
    out = ours(PROMPTS, max_new_tokens=6, do_sample=True, top_k=5, num_return_sequences=2)
    assert [len(rows) for rows in out] == [2, 2]
    assert all(r["generated_text"].startswith(p) for p, rows in zip(PROMPTS, out) for r in rows)
    # transformers' pipeline defaults (sampling at temperature 0.7) apply to what the model's config leaves unset
    kwargs = ours._generation_kwargs(ours.model, ours.tokenizer, {"max_new_tokens": 3})
    assert kwargs == {"max_new_tokens": 3, "do_sample": True, "temperature": 0.7}
    assert ours._generation_kwargs(ours.model, ours.tokenizer, {"do_sample": False}) == {
        "do_sample": False, "max_new_tokens": 256}
    with pytest.raises(ValueError, match="unknown keyword arguments"):
        ours(PROMPTS[0], max_new_tokens=2, not_an_option=1)


def test_chats_go_to_the_chat_model_when_the_text_model_has_none(generator):
    ours, _ = generator
    plain = ours.tokenizer.__class__(ours.tokenizer.backend, eos_token=ours.tokenizer.eos_token)  # no chat template
    pipe = TextGenerationPipeline(ours.model, plain, chat_loader=lambda: (ours.model, ours.tokenizer))
    assert pipe(CHAT, **GREEDY) == ours(CHAT, **GREEDY)
    with pytest.raises(Exception, match="chat template"):
        TextGenerationPipeline(ours.model, plain)(CHAT, **GREEDY)


# --- fill-mask ----------------------------------------------------------------------------------
@pytest.mark.parametrize("inputs, options", [
    ("paris is the [MASK] of france.", {}),
    ("a [MASK] b [MASK] c", {"top_k": 3}),
    (["x [MASK] y", "hello [MASK].", "the [MASK] and the [MASK]"], {"top_k": 2}),
    (["one [MASK] only"], {}),
    ("paris is the [MASK].", {"targets": ["paris", "london", "zzzqqq"]}),
], ids=["one-mask", "two-masks", "list", "list-of-one", "targets"])
def test_fill_mask(fill_mask, inputs, options):
    ours, ref = fill_mask
    assert_same(ours(inputs, **options), ref(inputs, **options))


def test_fill_mask_needs_a_mask(fill_mask):
    with pytest.raises(ValueError, match=r"has no mask token: put \[MASK\]"):
        fill_mask[0]("no mask here")


# --- feature-extraction and sentence-embeddings (real all-MiniLM-L6-v2) --------------------------
SENTENCES = ["A man is eating food.", "Two dogs play in the snow, far from home."]


def test_feature_extraction(minilm):
    ours, _, ref = minilm
    assert_same(ours(SENTENCES[0]), ref(SENTENCES[0]))
    assert_same(ours(SENTENCES), ref(SENTENCES))
    array = ours(SENTENCES[1], return_tensors=True)
    assert isinstance(array, np.ndarray) and array.shape == tuple(ref(SENTENCES[1], return_tensors=True).shape)


def test_sentence_embeddings(minilm):
    _, ours, ref = minilm
    hidden = [np.asarray(ref(s))[0] for s in SENTENCES]  # [T, D] each: mean pooling, then L2 (MiniLM's modules)
    expected = np.stack([h.mean(0) / np.linalg.norm(h.mean(0)) for h in hidden])
    assert_close(np.asarray(ours(SENTENCES)), expected, what="sentence embeddings")
    assert_close(ours(SENTENCES[0]), expected[0], what="one sentence")
    assert ours(SENTENCES, return_tensors=True).shape == expected.shape


# --- text-classification ------------------------------------------------------------------------
PAIR = {"text": "the movie was long", "text_pair": "but i liked it"}


@pytest.mark.parametrize("inputs", ["i loved this film", ["great", "awful and boring"], PAIR, [PAIR, PAIR]],
                         ids=["string", "strings", "pair", "pairs"])
@pytest.mark.parametrize("options", [{}, {"top_k": None}, {"top_k": 2}, {"function_to_apply": "sigmoid"},
                                     {"function_to_apply": "none", "top_k": 1}],
                         ids=["best", "all", "top2", "sigmoid", "none"])
def test_text_classification(classifier, inputs, options):
    ours, ref = classifier
    assert_same(ours(inputs, **options), ref(inputs, **options))


@pytest.mark.parametrize("problem_type", ["regression", "multi_label_classification", "single_label_classification"])
def test_text_classification_picks_the_function_from_the_config(classifier, problem_type):
    ours, ref = classifier
    configs = (ours.model.config, ref.model.config)
    try:
        for config in configs:
            config.problem_type = problem_type
        assert_same(ours("fine", top_k=None), ref("fine", top_k=None))
    finally:
        for config in configs:
            config.problem_type = None


# --- token-classification -----------------------------------------------------------------------
TEXT = "George Washington went to Washington with Mr. Smithers, a friend."
LONG = " ".join(["Angela Merkel met Emmanuel Macron in Berlin and Paris."] * 4)  # longer than 32 tokens


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification(tagger, strategy):
    ours, ref = tagger
    for options in ({}, {"ignore_labels": []}):
        assert_same(ours(TEXT, aggregation_strategy=strategy, **options),
                    ref(TEXT, aggregation_strategy=strategy, **options))


def test_token_classification_windows_lists_and_words(tagger):
    ours, ref = tagger
    options = {"aggregation_strategy": "simple", "ignore_labels": []}
    assert_same(ours(LONG, stride=8, **options), ref(LONG, stride=8, **options))  # overlapping windows
    assert_same(ours(LONG), ref(LONG))  # cut at model_max_length
    assert_same(ours([TEXT, "Paris"]), ref([TEXT, "Paris"]))
    words = ["Angela", "Merkel", "visited", "Paris"]
    assert_same(ours(words, is_split_into_words=True, ignore_labels=[]),
                ref(words, is_split_into_words=True, ignore_labels=[]))
    with pytest.raises(ValueError, match="aggregation_strategy other than"):
        ours(LONG, stride=8)


# --- question-answering (transformers 4.57.6: transformers 5 has no such pipeline) ----------------
CONTEXT = ("The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It is named after the engineer "
           "Gustave Eiffel, whose company designed and built the tower from 1887 to 1889.")
QA_CALLS = [
    {"args": [], "kwargs": {"question": "Who designed the tower?", "context": CONTEXT}},
    {"args": [], "kwargs": {"question": "Where is it?", "context": CONTEXT, "top_k": 3}},
    {"args": [], "kwargs": {"question": "When was it built?", "context": CONTEXT, "max_seq_len": 24, "doc_stride": 8,
                            "top_k": 2}},
    {"args": [], "kwargs": {"question": "Who?", "context": CONTEXT, "handle_impossible_answer": True,
                            "max_answer_len": 3}},
    {"args": [], "kwargs": {"question": ["Who?", "What is it?"], "context": CONTEXT, "align_to_words": False}},
    {"args": [[{"question": "What city?", "context": CONTEXT}, {"question": "Which country?", "context": "France."}]],
     "kwargs": {"top_k": 2}},
    {"args": ["Where is the tower?", CONTEXT], "kwargs": {}},
]


@pytest.fixture(scope="module", autouse=True)
def tf457_answers(tmp_path_factory):
    """transformers 4.57.6's answers on a tiny QA checkpoint, from a subprocess started with the module's first
    test (it runs while the others do): 4.57.6 from .venv-tf457 first on the path, with this venv's torch."""
    directory = _bert_checkpoint(tmp_path_factory.mktemp("qa"), "BertForQuestionAnswering")
    work = tmp_path_factory.mktemp("tf457")
    (work / "site").mkdir()
    for name in os.listdir(TF457_SITE):
        if name.split("-")[0] in ("transformers", "huggingface_hub", "tokenizers"):
            os.symlink(os.path.join(TF457_SITE, name), work / "site" / name)
    (work / "calls.json").write_text(json.dumps(QA_CALLS))
    script = os.path.join(ROOT, "tests", "compat", "tf457_question_answering.py")
    env = {**os.environ, "PYTHONPATH": str(work / "site"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "USE_TF": "0", "USE_FLAX": "0"}  # the PyTorch model, though TensorFlow and JAX are installed
    with open(work / "log.txt", "w") as log:
        process = subprocess.Popen([sys.executable, script, directory, str(work / "calls.json"), str(work / "out.json")],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)

    def answers() -> list:
        assert process.wait(timeout=600) == 0, (work / "log.txt").read_text()[-3000:]
        return json.loads((work / "out.json").read_text())

    yield directory, answers
    process.kill()
    process.wait()


def test_question_answering(tf457_answers):
    directory, answers = tf457_answers
    ours = pipeline("question-answering", model=directory)
    for call, ref in zip(QA_CALLS, answers()):
        assert_same(ours(*call["args"], **call["kwargs"]), ref)
    with pytest.raises(ValueError, match="needs both question= and context="):
        ours(question="Who?")


# --- pipeline() ---------------------------------------------------------------------------------
def test_pipeline_entry_point(classifier, tagger, tmp_path):
    assert flaxformers.pipeline is pipeline
    assert check_task("sentiment-analysis") == "text-classification" and check_task("ner") == "token-classification"
    assert set(TASKS) >= {"text-generation", "fill-mask", "feature-extraction", "sentence-embeddings",
                          "text-classification", "token-classification", "question-answering"}
    with pytest.raises(KeyError, match="Unknown task 'summarise'"):
        pipeline("summarise", model="x")
    with pytest.raises(ValueError, match="no default model for 'question-answering'"):
        pipeline("question-answering")
    with pytest.raises(TypeError, match=r"unknown arguments \['topk'\]"):
        classifier[0]("fine", topk=2)
    with pytest.raises(ValueError, match="pass tokenizer="):
        pipeline("ner", model=tagger[0].model)
    # a loaded model and tokenizer, under an alias
    ner = pipeline("ner", model=tagger[0].model, tokenizer=tagger[0].tokenizer, aggregation_strategy="first")
    assert_same(ner(TEXT), tagger[1](TEXT, aggregation_strategy="first"))
    # no task: read from the checkpoint's architectures
    tagger[1].model.save_pretrained(tmp_path)
    assert pipeline(model=str(tmp_path), tokenizer=tagger[0].tokenizer).task == "token-classification"

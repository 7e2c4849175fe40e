"""Every encoder-decoder against transformers' PyTorch classes on the same tiny random weights: one harness.

A case is a transformers config (2 layers, d_model 32) whose seq2seq LM is saved by transformers with
`save_pretrained`, its norm weights randomised (transformers initialises them at 1 or 0, which would hide a
swapped norm), then loaded by `FlaxAutoModelForSeq2SeqLM`. `heads` are the case's other classes, checked on
weights that transformers saved for them. Adding a family adds entries to `CASES`.

Every call uses [2, SRC] sources and [2, TGT] decoder inputs, so each case compiles a forward once per shape.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close
from safetensors.numpy import load_file, save_file

import flaxformers
from flaxformers.auto import FlaxAutoModelForSeq2SeqLM
from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import flatten, flax_to_state_dict
from flaxformers.training.losses import get_task_loss

SRC, TGT = 10, 7
VOCAB = 64


def _untie_head(path: str) -> None:
    """A T5 v1.1-style checkpoint as its config.json says it in 4.x: an own `lm_head` and no output scaling."""
    file = os.path.join(path, "config.json")
    with open(file) as f:
        config = json.load(f)
    config.pop("scale_decoder_outputs", None)
    config["tie_word_embeddings"] = False
    with open(file, "w") as f:
        json.dump(config, f)
    weights = load_file(os.path.join(path, "model.safetensors"))
    weights["lm_head.weight"] = np.random.RandomState(3).normal(0, 1, weights["shared.weight"].shape).astype(np.float32)
    save_file(weights, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})


@dataclass(frozen=True)
class Case:
    config: str  # transformers config class
    model: str  # transformers seq2seq LM class; ours is "Flax" + model
    kwargs: dict[str, Any]
    heads: tuple[str, ...] = ()  # the family's other classes (transformers names), base model first
    beams: tuple[int, ...] = (1,)  # generate() checks: 1 is greedy
    gradients: bool = False  # loss with labels and every gradient (through remat) against PyTorch's
    edit: Callable[[str], None] | None = None  # rewrites the saved checkpoint before both sides load it


BART = dict(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=40, decoder_ffn_dim=40, max_position_embeddings=48,
            init_std=0.1, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
            forced_eos_token_id=None)
T5 = dict(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=40, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
          relative_attention_max_distance=12, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)

BERT = dict(model_type="bert", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=48, pad_token_id=0)
GPT2 = dict(model_type="gpt2", vocab_size=VOCAB, n_embd=48, n_layer=2, n_head=4, n_positions=48, bos_token_id=1,
            eos_token_id=2)
# the encoder-decoder: any text encoder into any decoder with cross-attention (made causal, cross-attending)
AS_DECODER = dict(is_decoder=True, add_cross_attention=True)
COMPOSITE = dict(pad_token_id=0, eos_token_id=2, decoder_start_token_id=1)

CASES: dict[str, Case] = {
    # --- the BART-like transformer under each model type's switches ---
    "bart": Case("BartConfig", "BartForConditionalGeneration", BART,
                 heads=("BartModel", "BartForSequenceClassification", "BartForQuestionAnswering", "BartForCausalLM"),
                 beams=(1, 3), gradients=True),
    "mbart": Case("MBartConfig", "MBartForConditionalGeneration", {**BART, "activation_function": "relu"},
                  heads=("MBartModel", "MBartForSequenceClassification", "MBartForQuestionAnswering")),
    "marian": Case("MarianConfig", "MarianMTModel",
                   {**BART, "pad_token_id": VOCAB - 1, "decoder_start_token_id": VOCAB - 1, "eos_token_id": 0,
                    "scale_embedding": True, "activation_function": "swish"},
                   heads=("MarianModel",)),  # beams: PROCESSOR_CASES
    "pegasus": Case("PegasusConfig", "PegasusForConditionalGeneration",
                    {**BART, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0, "scale_embedding": True},
                    heads=("PegasusModel",)),
    "blenderbot": Case("BlenderbotConfig", "BlenderbotForConditionalGeneration",
                       {**BART, "pad_token_id": 0, "bos_token_id": 1, "decoder_start_token_id": 1},
                       heads=("BlenderbotModel",)),
    "blenderbot-small": Case("BlenderbotSmallConfig", "BlenderbotSmallForConditionalGeneration",
                             {**BART, "pad_token_id": 0, "bos_token_id": 1, "decoder_start_token_id": 1},
                             heads=("BlenderbotSmallModel",)),
    # --- T5: tied head with the d_model ** -0.5 rescale; v1.1 (gated-GELU, own head, no rescale); mT5 ---
    "t5": Case("T5Config", "T5ForConditionalGeneration", T5, heads=("T5Model", "T5EncoderModel"), beams=(1, 3)),
    "t5-v1_1-untied": Case("T5Config", "T5ForConditionalGeneration",
                           {**T5, "feed_forward_proj": "gated-gelu", "num_decoder_layers": 3},
                           edit=_untie_head, beams=(), gradients=True),  # transformers can't generate with 3 != 2
    "mt5": Case("MT5Config", "MT5ForConditionalGeneration", T5, heads=("MT5Model", "MT5EncoderModel")),
    # --- LongT5: blocks of 3 (radius 2) over the 10-token source; transient-global keys every 3 tokens ---
    "longt5-local": Case("LongT5Config", "LongT5ForConditionalGeneration",
                         {**T5, "local_radius": 2, "encoder_attention_type": "local"}, heads=("LongT5Model",)),
    "longt5-tglobal": Case("LongT5Config", "LongT5ForConditionalGeneration",
                           {**T5, "local_radius": 2, "global_block_size": 3, "encoder_attention_type": "transient-global",
                            "feed_forward_proj": "gated-gelu"}, heads=("LongT5Model",)),  # beams: T5's decoder
    # --- EncoderDecoderModel: BERT into BERT (same width), BERT into GPT-2 (wider: enc_to_dec_proj) ---
    "bert2bert": Case("EncoderDecoderConfig", "EncoderDecoderModel",
                      {"encoder": BERT, "decoder": {**BERT, **AS_DECODER}, **COMPOSITE}, gradients=True),
    "bert2gpt2": Case("EncoderDecoderConfig", "EncoderDecoderModel",
                      {"encoder": BERT, "decoder": {**GPT2, **AS_DECODER}, **COMPOSITE}, beams=(1, 3)),
}

# sources: row 1 is padded at the right; each row ends with one eos (the classification heads pool it)
rng = np.random.RandomState(0)
SOURCE = rng.randint(4, VOCAB - 2, (2, SRC)).astype(np.int32)
SOURCE_MASK = np.ones((2, SRC), np.int32)
SOURCE_MASK[1, SRC - 3:] = 0
TARGET = rng.randint(4, VOCAB - 2, (2, TGT)).astype(np.int32)


def _source(config) -> tuple[np.ndarray, np.ndarray]:
    ids = SOURCE.copy()
    lengths = SOURCE_MASK.sum(axis=1)
    ids[np.arange(2), lengths - 1] = config.eos_token_id
    ids[1, lengths[1]:] = config.pad_token_id
    return ids, SOURCE_MASK


def _torch(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.long)


def _ours(transformers_name: str):
    return getattr(flaxformers, "Flax" + transformers_name)


@dataclass
class Built:
    name: str
    case: Case
    path: str
    ref: Any
    ours: Any
    ids: np.ndarray  # [2, SRC]
    mask: np.ndarray
    out: Any  # our forward with hidden states and attentions
    expected: Any  # transformers' on the same inputs


_BUILT: dict[str, Built] = {}


def build(name: str, tmp_path_factory) -> Built:
    if name in _BUILT:
        return _BUILT[name]
    case = CASES[name]
    torch.manual_seed(0)
    config = getattr(transformers, case.config)(**case.kwargs)
    ref_cls = getattr(transformers, case.model)
    ref = ref_cls(config).eval()
    with torch.no_grad():
        for pname, p in ref.named_parameters():
            if "norm" in pname:
                p.normal_(1.0 if "weight" in pname else 0.0, 0.5)
        for bname, b in ref.named_buffers():
            if bname == "final_logits_bias":
                b.normal_(0.0, 0.5)
    path = str(tmp_path_factory.mktemp(name))
    ref.save_pretrained(path)
    if case.edit is not None:
        case.edit(path)
    ref = ref_cls.from_pretrained(path, attn_implementation="eager").eval()
    ours = FlaxAutoModelForSeq2SeqLM.from_pretrained(path)
    assert type(ours) is _ours(case.model)
    ids, mask = _source(ref.config)
    # eager: one call, whose op-by-op compilations every case of the same shapes reuses
    out = ours(ids, attention_mask=mask, decoder_input_ids=TARGET, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        expected = ref(_torch(ids), attention_mask=_torch(mask), decoder_input_ids=_torch(TARGET),
                       output_hidden_states=True, output_attentions=True)
    _BUILT[name] = built = Built(name, case, path, ref, ours, ids, mask, out, expected)
    return built


def _per_case(params: list) -> list:
    """Parameters (a case name first) that run on one xdist worker per case: its models are built once."""
    out = []
    for values in params:
        values = values if isinstance(values, tuple) else (values,)
        out.append(pytest.param(*values, marks=pytest.mark.xdist_group(f"seq2seq-{values[0]}")))
    return out


@pytest.fixture(scope="module")
def built(request, tmp_path_factory) -> Built:
    return build(request.param, tmp_path_factory)


every_case = pytest.mark.parametrize("built", _per_case(list(CASES)), indirect=True)


# --- parity ----------------------------------------------------------------------------------------
@every_case
def test_logits_hidden_states_attentions_cross_attentions_match(built):
    out, expected = built.out, built.expected
    assert_close(out.logits, expected.logits, what="logits")
    assert_close(out.encoder_last_hidden_state, expected.encoder_last_hidden_state, what="encoder_last_hidden_state")
    for field in ("encoder_hidden_states", "decoder_hidden_states", "encoder_attentions", "decoder_attentions",
                  "cross_attentions"):
        ours, ref = getattr(out, field), getattr(expected, field)
        assert len(ours) == len(ref), field
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_close(a, b, what=f"{field}[{i}]")


def _head_outputs(head: str, model, ids, mask, encoder_states) -> dict[str, Any]:
    """What a head class returns for the harness inputs (PyTorch or ours: the same call)."""
    if head.endswith("ForCausalLM"):  # the decoder alone, with cross-attention over given states
        out = model(TARGET if isinstance(ids, np.ndarray) else _torch(TARGET), encoder_hidden_states=encoder_states,
                    encoder_attention_mask=mask)
        return {"logits": out.logits}
    if head.endswith("EncoderModel"):
        return {"last_hidden_state": model(ids, attention_mask=mask).last_hidden_state}
    names = {"ForSequenceClassification": ("logits",), "ForQuestionAnswering": ("start_logits", "end_logits")}
    fields = next((v for k, v in names.items() if head.endswith(k)), None)
    if fields is not None:  # decoder inputs default to the shifted source (the classifier pools its last eos)
        out = model(ids, attention_mask=mask)
    else:
        out = model(ids, attention_mask=mask, decoder_input_ids=TARGET if isinstance(ids, np.ndarray) else _torch(TARGET))
        fields = ("last_hidden_state", "encoder_last_hidden_state")
    return {f: getattr(out, f) for f in fields}


@pytest.mark.parametrize("name, head", _per_case([(n, h) for n, c in CASES.items() for h in c.heads]))
def test_heads_match(name, head, tmp_path_factory):
    """Each other class on weights transformers saved for it (its head initialised by transformers)."""
    built = build(name, tmp_path_factory)
    torch.manual_seed(1)
    ref = getattr(transformers, head).from_pretrained(built.path, attn_implementation="eager").eval()
    path = str(tmp_path_factory.mktemp(f"{name}-{head}"))
    ref.save_pretrained(path)
    ours = _ours(head).from_pretrained(path)
    states = np.random.RandomState(2).normal(size=(2, SRC, built.ref.config.d_model)).astype(np.float32)
    with torch.no_grad():
        expected = _head_outputs(head, ref, _torch(built.ids), _torch(built.mask), torch.tensor(states))
    got = _head_outputs(head, ours, built.ids, built.mask, states)
    for field, value in expected.items():
        assert_close(got[field], value, what=f"{head}.{field}")


@pytest.mark.parametrize("name", _per_case([n for n, c in CASES.items() if c.gradients]))
def test_loss_with_labels_and_gradients_match_through_remat(name, tmp_path_factory):
    """transformers' loss with `labels` (decoder inputs: the labels shifted right; -100 ignored) and every gradient."""
    built = build(name, tmp_path_factory)
    model = type(built.ours).from_pretrained(built.path)
    model.enable_gradient_checkpointing()
    labels = TARGET.copy()
    labels[1, TGT - 2:] = -100
    task = get_task_loss("seq2seq-lm")
    batch = {"input_ids": built.ids, "attention_mask": built.mask, "labels": labels}

    def loss_fn(params):
        inputs = task.model_inputs(model, batch, {"input_ids": batch["input_ids"],
                                                  "attention_mask": batch["attention_mask"]})
        return task(model(**inputs, params=params), batch, model.config)

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(model.params)
    built.ref.zero_grad()
    ref_loss = built.ref(_torch(built.ids), attention_mask=_torch(built.mask), labels=_torch(labels)).loss
    ref_loss.backward()
    assert_close(loss, ref_loss.detach(), what="loss")
    expected = {n: p.grad for n, p in built.ref.named_parameters() if p.grad is not None}
    ours = flax_to_state_dict({p: np.asarray(g) for p, g in flatten(grads).items()},
                              model._conversion_rules(model.config))
    for pt_name, grad in ours.items():
        if pt_name in expected:
            assert_close(grad, expected[pt_name], what=f"grad {pt_name}")
    assert len(set(ours) & set(expected)) >= len(expected) - 1  # all but a tied copy


# --- the 4.57 API: encode, decode, init_cache --------------------------------------------------------
@every_case
def test_encode_then_cached_decode_equals_full_forward(built):
    """encode() once, then decode() one token at a time through init_cache (4.57's cache layout)."""
    model = built.ours
    encoder_outputs = model.encode(built.ids, attention_mask=built.mask)
    assert_close(encoder_outputs.last_hidden_state, built.expected.encoder_last_hidden_state, what="encode")
    cache = model.init_cache(2, TGT, encoder_outputs)
    assert {path[-1] for path in flatten(cache)} == {"cached_key", "cached_value", "cache_index"}
    step = jax.jit(lambda ids, cache, positions: model.decode(
        ids, encoder_outputs, encoder_attention_mask=built.mask, decoder_attention_mask=np.ones((2, TGT), np.int32),
        past_key_values=cache,
        **({"decoder_position_ids": positions} if getattr(model, "takes_position_ids", True) else {})))
    logits = []
    for t in range(TGT):
        out = step(TARGET[:, t:t + 1], cache, np.full((2, 1), t, np.int32))
        logits.append(np.asarray(out.logits))
        cache = out.past_key_values
    assert_close(np.concatenate(logits, axis=1), built.expected.logits, what="cached decode vs full")


@pytest.mark.parametrize("built", _per_case(["bart", "t5"]), indirect=True)
def test_tuple_outputs_follow_4_57(built):
    as_tuple = built.ours(built.ids, attention_mask=built.mask, decoder_input_ids=TARGET, return_dict=False)
    np.testing.assert_allclose(as_tuple[0], built.out.logits, atol=1e-5)
    np.testing.assert_allclose(as_tuple[-1], built.out.encoder_last_hidden_state, atol=1e-5)
    encoder_outputs = built.ours.encode(built.ids, attention_mask=built.mask, return_dict=False)
    decoded = built.ours.decode(TARGET, encoder_outputs, encoder_attention_mask=built.mask, return_dict=False)
    np.testing.assert_allclose(decoded[0], built.out.logits, atol=1e-5)


# --- checkpoints -----------------------------------------------------------------------------------
@every_case
def test_save_then_load_in_transformers(built, tmp_path):
    built.ours.save_pretrained(tmp_path)
    reloaded, info = getattr(transformers, built.case.model).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    with torch.no_grad():
        expected = reloaded.eval()(_torch(built.ids), attention_mask=_torch(built.mask),
                                   decoder_input_ids=_torch(TARGET)).logits
    assert_close(built.out.logits, expected, what="transformers reload")
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["architectures"] == [built.case.model]


@every_case
def test_msgpack_round_trip(built, tmp_path):
    built.ours.save_pretrained(tmp_path, safe_serialization=False)
    assert io.FLAX_WEIGHTS_NAME in os.listdir(tmp_path) and io.SAFE_WEIGHTS_NAME not in os.listdir(tmp_path)
    again = type(built.ours).from_pretrained(tmp_path)
    for path, value in flatten(built.ours.params).items():
        np.testing.assert_array_equal(flatten(again.params)[path], value)


# --- generate --------------------------------------------------------------------------------------
def _settings(built: Built, **extra: Any) -> dict[str, Any]:
    config = built.ref.config
    return dict(max_new_tokens=8, do_sample=False, pad_token_id=config.pad_token_id, eos_token_id=config.eos_token_id,
                decoder_start_token_id=config.decoder_start_token_id, **extra)


def _assert_same_tokens(ours, expected: torch.Tensor, fill: int) -> None:
    """transformers trims to the longest row; ours keeps the budget, filled past the end."""
    ours, expected = np.asarray(ours), expected.numpy()
    np.testing.assert_array_equal(ours[:, :expected.shape[1]], expected)
    assert np.all(ours[:, expected.shape[1]:] == fill)


@pytest.mark.parametrize("name, num_beams", _per_case([(n, b) for n, c in CASES.items() for b in c.beams]))
def test_generate_matches_transformers(name, num_beams, tmp_path_factory):
    built = build(name, tmp_path_factory)
    settings = _settings(built, num_beams=num_beams)
    ours = built.ours.generate(built.ids, attention_mask=built.mask, **settings).sequences
    with torch.no_grad():
        expected = built.ref.generate(_torch(built.ids), attention_mask=_torch(built.mask), **settings)
    fill = settings["pad_token_id"] or settings["eos_token_id"] if num_beams > 1 else settings["pad_token_id"]
    _assert_same_tokens(ours, expected, fill)


# summarisation and translation settings: each (case, ours, transformers') is one more compiled plan
PROCESSOR_CASES = [
    ("bart", dict(num_beams=3, no_repeat_ngram_size=2, length_penalty=2.0, min_length=6, early_stopping=True), None),
    ("mbart", dict(forced_bos_token_id=5, min_new_tokens=4, repetition_penalty=1.5), None),
    ("marian", dict(num_beams=2, forced_eos_token_id=0, length_penalty=0.5), None),
    # 4.57's forced_decoder_ids (transformers 5 dropped them): the same tokens as that decoder prompt
    ("t5", dict(forced_decoder_ids=[[1, 5], [2, 9]]), dict(decoder_input_ids=torch.tensor([[0, 5, 9]] * 2),
                                                           max_new_tokens=6)),
]


@pytest.mark.parametrize("name, ours_settings, ref_settings", _per_case(PROCESSOR_CASES))
def test_generate_with_processors_matches_transformers(name, ours_settings, ref_settings, tmp_path_factory):
    built = build(name, tmp_path_factory)
    settings = _settings(built, **ours_settings)
    ours = built.ours.generate(built.ids, attention_mask=built.mask, **settings).sequences
    reference = settings if ref_settings is None else {**_settings(built), **ref_settings}
    with torch.no_grad():
        expected = built.ref.generate(_torch(built.ids), attention_mask=_torch(built.mask), **reference)
    fill = settings["pad_token_id"]
    if settings.get("num_beams", 1) > 1:
        fill = fill or settings["eos_token_id"]
    _assert_same_tokens(ours, expected, fill)


@pytest.mark.parametrize("built", _per_case(["bart"]), indirect=True)
def test_generate_streams_and_compiles_once_per_plan(built):
    """Other sources of a length in the same bucket reuse the compiled loop; streaming yields the same tokens."""
    settings = _settings(built)
    built.ours.generate(built.ids, attention_mask=built.mask, **settings)
    plans = {plan for _, plan in built.ours._compiled_generators}
    traces = sum(g.traces for g in built.ours._compiled_generators.values())

    class Collect:
        def __init__(self):
            self.tokens = []

        def put(self, tokens):
            self.tokens.append(np.asarray(tokens).reshape(-1))

        def end(self):
            self.tokens.append(None)

    streamer = Collect()
    shorter = np.concatenate([built.ids[:, 2:], np.full((2, 2), built.ref.config.pad_token_id, np.int32)], axis=1)
    shorter_mask = np.concatenate([built.mask[:, 2:], np.zeros((2, 2), np.int32)], axis=1)
    streamed = built.ours.generate(shorter[:, :SRC - 1], attention_mask=shorter_mask[:, :SRC - 1], **settings,
                                   streamer=streamer).sequences
    assert streamer.tokens[-1] is None and len(streamer.tokens[0]) == 2  # the decoder prompts first
    steps = np.stack([t for t in streamer.tokens[:-1]], axis=1)  # [B, 1 + new tokens until all stopped]
    np.testing.assert_array_equal(steps, np.asarray(streamed)[:, :steps.shape[1]])
    assert {plan for _, plan in built.ours._compiled_generators} == plans
    assert sum(g.traces for g in built.ours._compiled_generators.values()) == traces
    assert {plan.encoder_bucket for plan in plans} == {16}
    with torch.no_grad():
        expected = built.ref.generate(_torch(shorter[:, :SRC - 1]), attention_mask=_torch(shorter_mask[:, :SRC - 1]),
                                      **settings)
    _assert_same_tokens(streamed, expected, settings["pad_token_id"])


@pytest.mark.xdist_group("seq2seq-t5")
def test_sampling_returns_sequences_per_prompt(tmp_path_factory):
    built = build("t5", tmp_path_factory)
    out = built.ours.generate(built.ids, attention_mask=built.mask, do_sample=True, top_k=5, temperature=0.7,
                              num_return_sequences=3, max_new_tokens=5, prng_key=jax.random.PRNGKey(1))
    sequences = np.asarray(out.sequences)
    assert sequences.shape == (6, 6) and np.all(sequences[:, 0] == built.ref.config.decoder_start_token_id)
    assert jnp.issubdtype(sequences.dtype, jnp.integer)


# --- tools: pipelines and the generate command -------------------------------------------------------
def _word_tokenizer(built: Built) -> str:
    """A word-level tokenizer over the tiny vocabulary ("w4", "w5", ...; the config's special tokens at their
    ids), saved beside the checkpoint for both sides; returns the directory."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    config = built.ref.config
    special = {config.pad_token_id: "<pad>", config.eos_token_id: "</s>", 3: "<unk>"}
    vocab = {special.get(i, f"w{i}"): i for i in range(VOCAB)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", config.eos_token_id)])
    backend.add_special_tokens(list(special.values()))
    path = os.path.join(built.path, "words")
    transformers.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                         unk_token="<unk>").save_pretrained(path)
    return path


TEXTS = ["w5 w9 w11 w20 w7", "w30 w31 w8 w40 w41 w42 w50 w9"]


def _reference_texts(built: Built, words: str, texts: list[str], **settings: Any) -> list[str]:
    """What transformers 4.x's text2text pipelines returned (transformers 5 dropped them): each text
    tokenized alone, generated, decoded without special tokens."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(words)
    out = []
    for text in texts:
        with torch.no_grad():
            ids = built.ref.generate(**tokenizer(text, return_tensors="pt"), **settings)
        out.append(tokenizer.decode(ids[0], skip_special_tokens=True))
    return out


# On bart's worker, with one greedy setting: the three tasks share the model and its compiled plans.
@pytest.mark.parametrize("task, key", [
    pytest.param(task, key, marks=pytest.mark.xdist_group("seq2seq-bart")) for task, key in (
        ("text2text-generation", "generated_text"), ("summarization", "summary_text"),
        ("translation", "translation_text"))])
def test_pipelines_match_transformers(task, key, tmp_path_factory):
    built = build("bart", tmp_path_factory)
    words = _word_tokenizer(built)
    ours = flaxformers.pipeline(task, model=built.ours, tokenizer=words, **_settings(built))
    expected = [{key: text} for text in _reference_texts(built, words, TEXTS, **_settings(built))]
    assert ours(TEXTS) == expected
    assert ours(TEXTS[0]) == [expected[0]]
    if task == "translation":  # call options reach generate; token ids instead of text
        shorter = _reference_texts(built, words, TEXTS[:1], **{**_settings(built), "max_new_tokens": 5})
        assert ours(TEXTS[:1], max_new_tokens=5) == [{key: shorter[0]}]
        with_ids = ours(TEXTS[:1], return_tensors=True, return_text=False, num_return_sequences=2, num_beams=2)
        assert len(with_ids) == 1 and len(with_ids[0]) == 2 and set(with_ids[0][0]) == {"translation_token_ids"}


@pytest.mark.xdist_group("seq2seq-t5")  # beside t5's other tests: its model is built once
def test_generate_command_with_an_encoder_decoder(tmp_path_factory, tmp_path, capsys):
    from flaxformers.cli import main

    built = build("t5", tmp_path_factory)
    model_dir = tmp_path / "model"
    built.ours.save_pretrained(model_dir)
    for name in os.listdir(_word_tokenizer(built)):
        os.replace(os.path.join(built.path, "words", name), model_dir / name)
    assert main(["generate", "--model", str(model_dir), "--max-new-tokens", "6", TEXTS[0]]) == 0
    streamed = capsys.readouterr().out
    assert main(["generate", "--model", str(model_dir), "--max-new-tokens", "6", *TEXTS]) == 0
    batch = capsys.readouterr().out
    expected = _reference_texts(built, str(model_dir), TEXTS, max_new_tokens=6, do_sample=False)
    assert streamed.strip() == expected[0] and batch.split("\n\n")[1].strip() == expected[1]


@pytest.mark.xdist_group("seq2seq-t5")
def test_finetune_seq2seq_lowers_the_loss(tmp_path_factory, tmp_path):
    """`finetune --task seq2seq-lm` on source/target records: the copy task's loss falls, and the saved
    model loads back."""
    from flaxformers.cli import main

    built = build("t5", tmp_path_factory)
    model_dir = tmp_path / "model"
    built.ours.save_pretrained(model_dir)
    for name in os.listdir(_word_tokenizer(built)):
        os.replace(os.path.join(built.path, "words", name), model_dir / name)
    rng = np.random.RandomState(0)
    records = [" ".join(f"w{i}" for i in rng.randint(4, 20, 4)) for _ in range(32)]
    with open(tmp_path / "train.jsonl", "w") as f:
        f.writelines(json.dumps({"source": r, "target": r}) + "\n" for r in records)
    out = tmp_path / "out"
    assert main(["finetune", "--model", str(model_dir), "--task", "seq2seq-lm", "--train-file",
                 str(tmp_path / "train.jsonl"), "--max-length", "8", "--max-target-length", "6", "--batch-size", "8",
                 "--max-steps", "12", "--learning-rate", "3e-3", "--output-dir", str(out), "--quiet"]) == 0
    with open(out / "metrics.jsonl") as f:
        losses = [json.loads(line)["loss"] for line in f if "loss" in line]
    assert len(losses) == 12 and np.all(np.isfinite(losses)) and np.mean(losses[-3:]) < np.mean(losses[:3])
    assert type(FlaxAutoModelForSeq2SeqLM.from_pretrained(out)) is flaxformers.FlaxT5ForConditionalGeneration

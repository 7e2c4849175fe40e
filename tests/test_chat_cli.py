"""`flaxformers chat`: history, /reset, /exit, and Ctrl-C stopping an answer but not the session."""

from __future__ import annotations

import fcntl
import os
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


def test_ctrl_c_stops_the_answer_not_the_session(model_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flaxformers.cli", "chat", "--model", model_dir, "--max-new-tokens", "900",
         "--temperature", "0", "--max-length", "1024"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # A one-page pipe: the answer (900 tokens, several pages) blocks on it until read, so Ctrl-C finds it
    # still streaming however fast the model and however slow this process.
    fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    try:
        process.stdin.write(b"Tell me a long story.\n")
        process.stdin.flush()
        assert os.read(process.stdout.fileno(), 64)  # the answer has started streaming
        process.send_signal(signal.SIGINT)
        process.stdin.write(b"/reset\nHi\n/exit\n")
        process.stdin.flush()
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, err.decode()[-2000:]
    assert b"[stopped]" in out and b"(conversation reset)" in err
    assert out.count(b"\n") >= 2  # the stopped answer's line, then the answer to "Hi"

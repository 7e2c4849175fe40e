"""`flaxformers serve` through the official `openai` client, against a live server on a tiny model.

The model is a tiny random GPT-2 with the real GPT-2 tokenizer and a ChatML template; its greedy
answers are checked against `model.generate` on the same templated prompt (generate is checked
against transformers elsewhere). The server runs in this process on a socket bound before it starts.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openai
import pytest
import transformers
import uvicorn
from _helpers import gpt2_tokenizer_dir

from flaxformers import AutoTokenizer, BertConfig, FlaxBertModel, FlaxGPT2LMHeadModel, GPT2Config
from flaxformers.embeddings import SentenceEmbedder
from flaxformers.generation.batching import ContinuousBatcher
from flaxformers.serving import ServedEmbedder, ServedModel, create_app

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    source = gpt2_tokenizer_dir(tmp_path_factory.mktemp("vocab"))
    ref_tokenizer = transformers.GPT2TokenizerFast(f"{source}/vocab.json", f"{source}/merges.txt")
    ref_tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    ref_tokenizer.chat_template = CHATML
    ref_tokenizer.save_pretrained(directory)
    model = FlaxGPT2LMHeadModel(GPT2Config(vocab_size=len(ref_tokenizer), n_positions=128, n_embd=32, n_layer=2,
                                           n_head=4, eos_token_id=ref_tokenizer.convert_tokens_to_ids("<|im_end|>")))
    model.save_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    served = ServedModel("tiny-chat", tokenizer, ContinuousBatcher(model, slots=4, max_length=128, chunk=32))
    encoder = FlaxBertModel(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=48, max_position_embeddings=64))
    vocab = tmp_path_factory.mktemp("bert") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", "the",
                                "cat", "sat", "on", "mat"]) + "\n")
    embedder = ServedEmbedder("tiny-embed", SentenceEmbedder(encoder, AutoTokenizer.from_pretrained(vocab.parent)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(create_app(served, embedder), log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    yield {"base": base, "port": port, "client": openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0),
           "model": model, "tokenizer": tokenizer, "served": served, "embedder": embedder, "uvicorn": uv,
           "thread": thread}
    uv.should_exit = True
    thread.join(timeout=30)


def _http(server, method: str, path: str, body: bytes | dict | None = None) -> tuple[int, dict]:
    """A raw request (stdlib http.client), for what the openai client will not send."""
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    connection.request(method, path, body=data, headers={"content-type": "application/json"})
    response = connection.getresponse()
    result = response.status, json.loads(response.read())
    connection.close()
    return result


def _greedy(server, messages, max_new_tokens) -> str:
    tokenizer, model = server["tokenizer"], server["model"]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    out = model.generate(np.asarray([ids]), max_new_tokens=max_new_tokens, do_sample=False)
    new = [int(t) for t in np.asarray(out.sequences)[0, len(ids):]]
    eos = model.config.eos_token_id
    new = new[:new.index(eos) + 1] if eos in new else new
    return tokenizer.decode(new, skip_special_tokens=True)


def test_models_and_health(server):
    assert {m.id for m in server["client"].models.list().data} == {"tiny-chat", "tiny-embed"}
    assert _http(server, "GET", "/health")[1]["status"] == "ok"


def test_chat_completion_equals_greedy_generate(server):
    reply = server["client"].chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=12,
                                                     temperature=0)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == _greedy(server, MESSAGES, 12)
    prompt = len(server["tokenizer"].apply_chat_template(MESSAGES, add_generation_prompt=True))
    assert reply.usage.prompt_tokens == prompt and 0 < reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == prompt + reply.usage.completion_tokens


def test_streaming_gives_the_same_text_and_usage(server):
    client = server["client"]
    full = client.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=12, temperature=0)
    chunks = list(client.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=12, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == full.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_many_clients_at_once_get_what_they_get_alone(server):
    client = server["client"]
    conversations = [[{"role": "user", "content": f"Tell me about number {i}."}] for i in range(7)]  # 7 > 4 slots

    def ask(messages):
        stream = client.chat.completions.create(model="tiny-chat", messages=messages, max_tokens=10, temperature=0,
                                                stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with ThreadPoolExecutor(7) as pool:
        answers = list(pool.map(ask, conversations))
    assert answers == [_greedy(server, m, 10) for m in conversations]


def test_completions_logprobs_stop_n_and_seed(server):
    client = server["client"]
    out = client.completions.create(model="tiny-chat", prompt="The capital of France is", max_tokens=6,
                                    temperature=0, logprobs=2)
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == out.usage.completion_tokens
    assert all(max(top.values()) >= chosen - 1e-6 for top, chosen in zip(lp.top_logprobs, lp.token_logprobs))
    text = out.choices[0].text
    stop = text[2:4]
    stopped = client.completions.create(model="tiny-chat", prompt="The capital of France is", max_tokens=6,
                                        temperature=0, stop=[stop])
    assert stopped.choices[0].text == text[:text.index(stop)] and stopped.choices[0].finish_reason == "stop"
    sampled = client.completions.create(model="tiny-chat", prompt="Hello", max_tokens=8, n=3, seed=7, temperature=1)
    again = client.completions.create(model="tiny-chat", prompt="Hello", max_tokens=8, n=3, seed=7, temperature=1)
    assert [c.text for c in sampled.choices] == [c.text for c in again.choices]
    assert [c.index for c in sampled.choices] == [0, 1, 2] and len({c.text for c in sampled.choices}) > 1


def test_chat_logprobs(server):
    reply = server["client"].chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=4, temperature=0,
                                                     logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens and all(len(t.top_logprobs) == 3 for t in content)
    assert all(t.logprob == pytest.approx(t.top_logprobs[0].logprob, abs=1e-5) for t in content)  # greedy = top-1


def test_embeddings_equal_the_embedder(server):
    client, embedder = server["client"], server["embedder"].embedder
    texts = ["the cat sat", "on the mat"]
    out = client.embeddings.create(model="tiny-embed", input=texts)
    np.testing.assert_allclose([d.embedding for d in out.data], embedder.encode(texts), atol=1e-6)
    _, raw = _http(server, "POST", "/v1/embeddings", {"model": "tiny-embed", "input": "the cat",
                                                      "encoding_format": "base64"})
    vector = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), np.float32)
    np.testing.assert_allclose(vector, embedder.encode("the cat"), atol=1e-6)


@pytest.mark.parametrize("call, status, code", [
    (lambda c: c.chat.completions.create(model="nope", messages=MESSAGES), 404, "model_not_found"),
    (lambda c: c.chat.completions.create(model="tiny-chat", messages=MESSAGES, temperature=5), 400, None),
    (lambda c: c.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "x " * 200}]),
     400, "context_length_exceeded"),
    (lambda c: c.chat.completions.create(model="tiny-chat", messages=MESSAGES, frequency_penalty=1.0), 400, None),
    (lambda c: c.embeddings.create(model="tiny-chat", input="x"), 404, "model_not_found"),
])
def test_errors_have_openai_shape_and_status(server, call, status, code):
    with pytest.raises(openai.APIStatusError) as info:
        call(server["client"])
    assert info.value.status_code == status
    body = info.value.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["code"] == code and body["message"]


def test_malformed_json_is_a_400(server):
    status, body = _http(server, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"


def test_a_client_that_disconnects_frees_its_row(server, monkeypatch):
    events = []  # what the batcher sent the request, recorded as it is sent
    submit = server["served"].batcher.submit

    def recording_submit(request):
        put = request.events.put
        request.events.put = lambda event: events.append(event) or put(event)
        return submit(request)

    monkeypatch.setattr(server["served"].batcher, "submit", recording_submit)
    body = {"model": "tiny-chat", "messages": MESSAGES, "max_tokens": 100, "temperature": 0, "stream": True}
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    connection.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                       headers={"content-type": "application/json"})
    first = connection.getresponse().readline().decode()
    assert first.startswith("data: ") and json.loads(first[6:])["object"] == "chat.completion.chunk"
    connection.close()  # gone mid-stream
    deadline = time.monotonic() + 120  # a busy 2-core host may compile the next key window meanwhile
    while _http(server, "GET", "/health")[1]["active_requests"] and time.monotonic() < deadline:
        pass
    assert server["served"].batcher.active == 0
    assert events[-1].reason == "cancelled"  # freed by the disconnect, not by running out of tokens


def test_graceful_shutdown_stops_the_batcher(server):
    """Last in the module: shutting down ends the uvicorn thread and the batcher's loop."""
    server["uvicorn"].should_exit = True
    server["thread"].join(timeout=30)
    assert not server["thread"].is_alive() and not server["served"].batcher._thread.is_alive()

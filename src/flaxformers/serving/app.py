"""An OpenAI-compatible HTTP server: FastAPI on uvicorn, over the continuous batcher.

Endpoints: `GET /health`, `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`
(streamed as server-sent events with `"stream": true`) and `POST /v1/embeddings` (from an encoder).
Concurrent requests share decode steps in one `ContinuousBatcher`; a client that disconnects frees
its row at once. Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with
its status codes.

    from flaxformers.serving import ServedModel, create_app
    app = create_app(ServedModel.load("path/to/chat-model"))   # then: uvicorn.run(app)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from flaxformers.generation.batching import ContinuousBatcher, Finished
from flaxformers.generation.batching import Request as SlotRequest
from flaxformers.serving.text import TextStream


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.body = status, {"message": message, "type": type, "param": param, "code": code}


# --- what is served --------------------------------------------------------------------------------
@dataclass
class ServedModel:
    """A causal LM, its tokenizer and the batcher that runs its requests."""

    id: str
    tokenizer: Any
    batcher: ContinuousBatcher

    @classmethod
    def load(cls, path: str | os.PathLike, *, model_id: str | None = None, slots: int = 8,
             max_length: int | None = None, dtype: Any = None) -> ServedModel:
        from flaxformers.defaults import load_causal_lm

        model, tokenizer = load_causal_lm(path, dtype)
        batcher = ContinuousBatcher(model, slots=slots, max_length=max_length)
        batcher.warmup()  # every compiled shape now, none while serving
        return cls(model_id or _model_id(path), tokenizer, batcher)

    @property
    def eos_ids(self) -> tuple[int, ...]:
        eos = self.batcher.model.generation_config.eos_token_id if self.batcher.model.generation_config else None
        eos = eos if eos is not None else self.tokenizer.eos_token_id
        return tuple(eos) if isinstance(eos, list | tuple) else (() if eos is None else (int(eos),))


@dataclass
class ServedEmbedder:
    id: str
    embedder: Any  # flaxformers.embeddings.SentenceEmbedder

    @classmethod
    def load(cls, path: str | os.PathLike, model_id: str | None = None) -> ServedEmbedder:
        from flaxformers.embeddings import SentenceEmbedder

        return cls(model_id or _model_id(path), SentenceEmbedder.from_pretrained(path))


def _model_id(path: str | os.PathLike) -> str:
    name = os.path.basename(os.path.normpath(os.fspath(path)))
    return name.removesuffix(".gguf")


# --- request bodies --------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)  # an extension many servers accept
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    def check(self) -> None:
        """Refuse the OpenAI parameters this server does not implement, unless they are at their defaults."""
        given = {**(self.model_extra or {}), "presence_penalty": self.presence_penalty,
                 "frequency_penalty": self.frequency_penalty}
        for name, defaults in _UNSUPPORTED.items():
            if name in given and given[name] not in defaults:
                raise OpenAIError(400, f"{name} is not supported by this server; leave it out.", param=name)

    @property
    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


# Parameter -> the values that mean "not used", which are accepted.
_UNSUPPORTED: dict[str, tuple] = {
    "presence_penalty": (0, 0.0, None), "frequency_penalty": (0, 0.0, None), "logit_bias": (None, {}),
    "suffix": (None, ""), "best_of": (None, 1), "functions": (None, []), "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}), "tool_choice": (None, "none", "auto"),
}


class ChatBody(_Body):
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=5)
    tools: list[dict[str, Any]] | None = None


class CompletionBody(_Body):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=1)
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: bool = False


class EmbeddingBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str]
    encoding_format: str = "float"


# --- generation ----------------------------------------------------------------------------------
class _AsyncEvents:
    """The batcher's event sink for one request, delivered into the server's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.queue = loop, asyncio.Queue()

    def put(self, event: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)


@dataclass
class _Piece:
    """What one choice produced since the last piece."""

    index: int
    text: str
    tokens: list  # the batcher's Token events behind `text`
    finish_reason: str | None = None


def _submit(served: ServedModel, ids: list[int], body: _Body, max_new: int, seed: int, logprobs: int) -> SlotRequest:
    context = served.batcher.max_length
    if len(ids) + max_new > context:
        where = "messages" if isinstance(body, ChatBody) else "prompt"
        raise OpenAIError(400, f"This model's maximum context length is {context} tokens. However, you requested "
                               f"{len(ids) + max_new} tokens ({len(ids)} in the {where}, {max_new} in the completion). "
                               f"Please reduce the length of the {where} or the completion.",
                          param=where, code="context_length_exceeded")
    request = SlotRequest(prompt_ids=ids, max_new_tokens=max_new, temperature=body.temperature, top_p=body.top_p,
                          top_k=body.top_k, seed=seed, logprobs=logprobs, eos_token_ids=served.eos_ids,
                          events=_AsyncEvents(asyncio.get_running_loop()))
    try:
        return served.batcher.submit(request)
    except ValueError as e:
        raise OpenAIError(400, str(e), param="messages" if isinstance(body, ChatBody) else "prompt") from e


async def _choice(served: ServedModel, index: int, request: SlotRequest, stops: list[str]) -> AsyncIterator[_Piece]:
    """The pieces of one choice; a stop string ends it (and frees its row)."""
    text = TextStream(served.tokenizer, stops)
    try:
        while True:
            event = await request.events.queue.get()
            if isinstance(event, Finished):
                if event.reason == "error":
                    raise OpenAIError(500, f"Generation failed: {event.detail}", type="server_error")
                yield _Piece(index, text.flush(), [], "length" if event.reason == "length" else "stop")
                return
            delta = text.push(event.id)
            if text.stopped:
                request.cancel()
                yield _Piece(index, delta, [event], "stop")
                return
            yield _Piece(index, delta, [event])
    finally:
        request.cancel()  # a no-op when finished; frees the row when the client went away


async def _merged(choices: list[AsyncIterator[_Piece]]) -> AsyncIterator[_Piece]:
    """Pieces of several choices as they come."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(choice):
        try:
            async for piece in choice:
                await queue.put(piece)
        except Exception as e:  # noqa: BLE001  (re-raised in the consumer)
            await queue.put(e)
        await queue.put(None)

    tasks = [asyncio.ensure_future(pump(c)) for c in choices]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()


def _token_logprobs(tokenizer, tokens: list, chat: bool) -> Any:
    def text(i: int) -> str:
        return tokenizer.decode([i])

    if chat:
        return [{"token": text(t.id), "logprob": t.logprob, "bytes": list(text(t.id).encode()),
                 "top_logprobs": [{"token": text(i), "logprob": v, "bytes": list(text(i).encode())}
                                  for i, v in t.top]} for t in tokens]
    return {"tokens": [text(t.id) for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [{text(i): v for i, v in t.top} for t in tokens]}


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


# --- the app ---------------------------------------------------------------------------------------
def create_app(generator: ServedModel | None = None, embedder: ServedEmbedder | None = None) -> FastAPI:
    """The FastAPI app serving `generator` (chat and completions) and/or `embedder` (embeddings)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if generator is not None:  # graceful shutdown: running requests end, the loop thread stops
            generator.batcher.close()

    app = FastAPI(title="flaxformers", lifespan=lifespan)

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, e: OpenAIError):
        return JSONResponse({"error": e.body}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = "Malformed JSON body." if first.get("type") == "json_invalid" else (
            f"Invalid request: {where}: {first.get('msg', 'invalid value')}" if where else
            f"Invalid request: {first.get('msg', 'invalid body')}")
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": where,
                                       "code": None}}, status_code=400)

    def model_for(body: BaseModel, served: Any, what: str) -> Any:
        if served is None or body.model != served.id:
            known = [m.id for m in (generator, embedder) if m is not None]
            raise OpenAIError(404, f"The model {body.model!r} does not exist on this server ({what}); it serves "
                                   f"{known}.", param="model", code="model_not_found")
        return served

    @app.get("/health")
    async def health():
        return {"status": "ok", "active_requests": generator.batcher.active if generator else 0}

    @app.get("/v1/models")
    async def models():
        data = [{"id": m.id, "object": "model", "created": 0, "owned_by": "flaxformers"}
                for m in (generator, embedder) if m is not None]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody, http: Request):
        served = model_for(body, generator, "chat completions")
        body.check()
        try:
            ids = served.tokenizer.apply_chat_template(body.messages, tools=body.tools, add_generation_prompt=True)
        except ValueError as e:
            raise OpenAIError(400, f"The messages do not fit this model's chat template: {e}", param="messages") from e
        limit = body.max_completion_tokens or body.max_tokens or max(1, served.batcher.max_length - len(ids))
        top = body.top_logprobs or 0
        return await _respond(http, served, [ids], body, limit, top, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionBody, http: Request):
        served = model_for(body, generator, "completions")
        body.check()
        prompts = body.prompt if isinstance(body.prompt, list) and body.prompt and not isinstance(
            body.prompt[0], int) else [body.prompt]
        ids = [p if isinstance(p, list) else served.tokenizer.encode(p, add_special_tokens=True) for p in prompts]
        logprobs = body.logprobs if body.logprobs is not None else 0
        return await _respond(http, served, ids, body, body.max_tokens or 16, logprobs, chat=False)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingBody):
        served = model_for(body, embedder, "embeddings")
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts or not all(isinstance(t, str) and t for t in texts):
            raise OpenAIError(400, "input must be a non-empty string or a list of non-empty strings.", param="input")
        vectors = await asyncio.to_thread(served.embedder.encode, texts)
        tokens = int(sum(np.sum(served.embedder.tokenizer(t)["attention_mask"]) for t in texts))
        if body.encoding_format not in ("float", "base64"):
            raise OpenAIError(400, "encoding_format must be 'float' or 'base64'.", param="encoding_format")
        encode = (lambda v: base64.b64encode(np.asarray(v, np.float32).tobytes()).decode()) if (
            body.encoding_format == "base64") else (lambda v: [float(x) for x in v])
        data = [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": served.id,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    return app


async def _respond(http: Request, served: ServedModel, prompts: list[list[int]], body: _Body, max_new: int,
                   logprobs: int, chat: bool):
    """Run n choices per prompt; answer at once, or stream chunks as server-sent events."""
    base_seed = body.seed if body.seed is not None else int.from_bytes(os.urandom(4), "little")
    requests: list[SlotRequest] = []
    try:
        for ids in prompts:
            requests += [_submit(served, ids, body, max_new, base_seed + k, logprobs) for k in range(body.n)]
    except OpenAIError:
        for request in requests:  # the choices already queued go too
            request.cancel()
        raise
    choices = [_choice(served, i, r, body.stops) for i, r in enumerate(requests)]
    meta = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}", "created": int(time.time()),
            "model": served.id}
    prompt_tokens = sum(len(p) for p in prompts) * body.n
    if body.stream:
        return StreamingResponse(_stream(choices, requests, meta, served, body, prompt_tokens, logprobs, chat),
                                 media_type="text/event-stream")
    collect = asyncio.ensure_future(_collect(choices, len(requests)))
    while not collect.done():  # answer nothing to a client that left, and free its rows
        await asyncio.wait({collect}, timeout=0.25)
        if not collect.done() and await http.is_disconnected():
            collect.cancel()
            for request in requests:
                request.cancel()
            raise OpenAIError(499, "The client closed the connection.")
    texts, tokens, reasons = collect.result()
    completion_tokens = sum(len(t) for t in tokens)
    out = []
    for i, (text, toks, reason) in enumerate(zip(texts, tokens, reasons)):
        lp = _token_logprobs(served.tokenizer, toks, chat) if logprobs or (chat and body.logprobs) else None
        if chat:
            out.append({"index": i, "message": {"role": "assistant", "content": text},
                        "logprobs": {"content": lp} if lp is not None else None, "finish_reason": reason})
        else:
            out.append({"index": i, "text": text, "logprobs": lp, "finish_reason": reason})
    return {**meta, "object": "chat.completion" if chat else "text_completion", "choices": out,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


async def _collect(choices: list, count: int) -> tuple[list[str], list[list], list[str | None]]:
    texts, tokens, reasons = [""] * count, [[] for _ in range(count)], [None] * count
    async for piece in _merged(choices):
        texts[piece.index] += piece.text
        tokens[piece.index] += piece.tokens
        reasons[piece.index] = piece.finish_reason or reasons[piece.index]
    return texts, tokens, reasons


async def _stream(choices, requests, meta, served, body, prompt_tokens, logprobs, chat) -> AsyncIterator[str]:
    kind = "chat.completion.chunk" if chat else "text_completion"
    completion_tokens = 0
    try:
        if chat:
            for i in range(len(requests)):
                yield _sse({**meta, "object": kind, "choices": [
                    {"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                     "finish_reason": None}]})
        async for piece in _merged(choices):
            completion_tokens += len(piece.tokens)
            lp = _token_logprobs(served.tokenizer, piece.tokens, chat) if piece.tokens and (
                logprobs or (chat and body.logprobs)) else None
            if chat:
                choice = {"index": piece.index, "delta": {"content": piece.text} if piece.text else {},
                          "logprobs": {"content": lp} if lp else None, "finish_reason": piece.finish_reason}
            else:
                choice = {"index": piece.index, "text": piece.text, "logprobs": lp, "finish_reason": piece.finish_reason}
            yield _sse({**meta, "object": kind, "choices": [choice]})
        if (body.stream_options or {}).get("include_usage"):
            yield _sse({**meta, "object": kind, "choices": [], "usage": {
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}})
        yield "data: [DONE]\n\n"
    except OpenAIError as e:
        yield _sse({"error": e.body})
    finally:  # the client left, or the stream ended: free every row at once
        for request in requests:
            request.cancel()


__all__ = ["OpenAIError", "ServedEmbedder", "ServedModel", "create_app"]

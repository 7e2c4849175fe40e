"""text-generation: continue strings, or answer chats (lists of {"role", "content"} messages), with `model.generate`.

Prompts of a batch are left-padded and generated together; each row's result is what generating it
alone gives (the engine's padding contract), cut after its end-of-sequence token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from flaxformers.pipelines.base import DEFAULT_BATCH_SIZE, Pipeline, map_batched, with_generation_defaults

TENSORS, NEW_TEXT, FULL_TEXT = "tensors", "new_text", "full_text"
# transformers' text-generation defaults, for the keys neither the call nor the model's generation config sets
PIPELINE_GENERATION_DEFAULTS = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}
# The call options that are the pipeline's own; the others (and max_length, which also bounds the prompt) go to generate.
PIPELINE_OPTIONS = {"return_type", "prefix", "truncation", "add_special_tokens", "continue_final_message",
                    "skip_special_tokens", "tools", "documents", "prng_key"}


def is_message(item: Any) -> bool:
    return isinstance(item, dict) and "role" in item and "content" in item


class Chat:
    """One conversation (so that a list of messages is not read as a batch of prompts)."""

    def __init__(self, messages: Sequence[dict[str, Any]]):
        if not all(is_message(m) for m in messages):
            raise ValueError("A chat is a list of messages, each a dict with 'role' and 'content' keys.")
        self.messages = list(messages)


def _is_chat(item: Any) -> bool:
    return isinstance(item, list | tuple) and bool(item) and is_message(item[0])


class TextGenerationPipeline(Pipeline):
    """`pipe(prompt_or_chat_or_list, max_new_tokens=..., do_sample=..., ...)` -> `[{"generated_text": ...}]` per input.

    Chats are rendered with the tokenizer's chat template and a generation prompt; their result is the
    conversation with the assistant's reply appended. `chat_loader`, if given, supplies the
    `(model, tokenizer)` that answers chats when this model's tokenizer has no chat template.
    """

    task = "text-generation"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 chat_loader: Callable[[], tuple[Any, Any]] | None = None, **options: Any):
        if not model.can_generate():
            raise ValueError(f"text-generation needs a model with a language-modeling head, got {type(model).__name__}; "
                             "load it with FlaxAutoModelForCausalLM.")
        super().__init__(model, tokenizer, batch_size=batch_size, **options)
        self._chat_loader, self._chat_engine = chat_loader, None
        self._prng_key = jax.random.PRNGKey(0)

    def options(self, return_full_text: bool | None = None, return_tensors: bool | None = None,
                return_text: bool | None = None, prefix: str | None = None, max_length: int | None = None,
                truncation: bool | None = None, add_special_tokens: bool | None = None,
                continue_final_message: bool | None = None, skip_special_tokens: bool | None = None,
                tools: list | None = None, documents: list | None = None, prng_key: Any = None,
                **generate_kwargs: Any) -> dict[str, Any]:
        if return_full_text is not None and (return_text is not None or return_tensors is not None):
            raise ValueError("return_full_text cannot be combined with return_text or return_tensors; pass one.")
        if return_tensors is not None and return_text is not None:
            raise ValueError("return_text and return_tensors are mutually exclusive; pass one.")
        return_type = None
        if return_full_text is not None:
            return_type = FULL_TEXT if return_full_text else NEW_TEXT
        elif return_tensors:
            return_type = TENSORS
        return {"return_type": return_type, "prefix": prefix, "max_length": max_length, "truncation": truncation,
                "add_special_tokens": add_special_tokens, "continue_final_message": continue_final_message,
                "skip_special_tokens": skip_special_tokens, "tools": tools, "documents": documents,
                "prng_key": prng_key, **generate_kwargs}

    def __call__(self, text_inputs: Any, **kwargs: Any) -> Any:
        options, batch_size = self._call_options(kwargs)
        if isinstance(text_inputs, str):
            return self._batch([text_inputs], options)[0]
        if _is_chat(text_inputs):
            return self._batch([Chat(text_inputs)], options)[0]
        items = (Chat(item) if _is_chat(item) else item for item in text_inputs)
        if isinstance(text_inputs, list | tuple):
            items = list(items)
        return map_batched(lambda batch: self._batch(batch, options), items, batch_size)

    # --- one batch -------------------------------------------------------------------------------
    def _engine(self, chat: bool) -> tuple[Any, Any]:
        if not chat or self.tokenizer.chat_template is not None or self._chat_loader is None:
            return self.model, self.tokenizer
        if self._chat_engine is None:
            self._chat_engine = self._chat_loader()
        return self._chat_engine

    def _generation_kwargs(self, model: Any, tokenizer: Any, options: dict[str, Any]) -> dict[str, Any]:
        """The call's generation settings plus the pipeline's defaults for those nobody set."""
        given = {k: v for k, v in options.items() if k not in PIPELINE_OPTIONS}
        return with_generation_defaults(given, PIPELINE_GENERATION_DEFAULTS, model, tokenizer)

    def _prompt_text(self, item: Any, tokenizer: Any, options: dict[str, Any]) -> str:
        if not isinstance(item, Chat):
            if not isinstance(item, str):
                raise ValueError(f"text-generation takes a string, a chat (list of messages) or a list of those; "
                                 f"got {type(item).__name__}.")
            return options.get("prefix", "") + item
        prefill = _continues(item, options)
        return tokenizer.apply_chat_template(item.messages, add_generation_prompt=not prefill,
                                             continue_final_message=prefill, tools=options.get("tools"),
                                             documents=options.get("documents"), tokenize=False)

    def _batch(self, items: list[Any], options: dict[str, Any]) -> list[list[dict[str, Any]]]:
        chat = isinstance(items[0], Chat)
        model, tokenizer = self._engine(chat)
        add_special = False if chat else options.get("add_special_tokens", True)
        encoded = tokenizer([self._prompt_text(item, tokenizer, options) for item in items], padding=True,
                            padding_side="left", add_special_tokens=add_special,
                            truncation=options.get("truncation", False), max_length=options.get("max_length"))
        generation = self._generation_kwargs(model, tokenizer, options)
        prng_key = options.get("prng_key")
        if prng_key is None:
            self._prng_key, prng_key = jax.random.split(self._prng_key)
        output = model.generate(encoded["input_ids"], attention_mask=encoded["attention_mask"], prng_key=prng_key,
                                **generation)
        sequences = np.asarray(output.sequences)
        config = generation.get("generation_config") or model.generation_config
        eos = generation.get("eos_token_id", config.eos_token_id if config is not None else None)
        eos = set() if eos is None else {int(e) for e in np.atleast_1d(eos)}
        width, per_input = encoded["input_ids"].shape[1], sequences.shape[0] // len(items)
        results = []
        for i, item in enumerate(items):
            prompt = encoded["input_ids"][i][encoded["attention_mask"][i] == 1].tolist()
            rows = sequences[i * per_input:(i + 1) * per_input, width:]
            results.append([self._record(item, prompt, _until_eos(row, eos), tokenizer, options) for row in rows])
        return results

    def _record(self, item: Any, prompt: list[int], new: list[int], tokenizer: Any,
                options: dict[str, Any]) -> dict[str, Any]:
        return_type = options.get("return_type", FULL_TEXT)
        if return_type == TENSORS:
            return {"generated_token_ids": prompt + new}
        text = tokenizer.decode(new, skip_special_tokens=options.get("skip_special_tokens", True))
        if return_type == NEW_TEXT:
            return {"generated_text": text}
        if not isinstance(item, Chat):
            return {"generated_text": item + text}
        if _continues(item, options):  # the reply continues the final message
            last = item.messages[-1]
            return {"generated_text": [*item.messages[:-1], {"role": last["role"], "content": last["content"] + text}]}
        return {"generated_text": [*item.messages, {"role": "assistant", "content": text}]}


def _continues(chat: Chat, options: dict[str, Any]) -> bool:
    """Whether the model continues the chat's final message: by default when it is the assistant's (a prefill)."""
    prefill = options.get("continue_final_message")
    return chat.messages[-1]["role"] == "assistant" if prefill is None else bool(prefill)


def _until_eos(row: np.ndarray, eos: set[int]) -> list[int]:
    """A row's new tokens up to and including the first end-of-sequence token (what follows is padding)."""
    tokens = row.tolist()
    for index, token in enumerate(tokens):
        if token in eos:
            return tokens[:index + 1]
    return tokens


__all__ = ["TextGenerationPipeline", "Chat"]

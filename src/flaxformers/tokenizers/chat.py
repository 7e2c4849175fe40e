"""Chat templates: Jinja2 in the sandbox transformers uses, with its helpers, so prompts render the same.

Templates come from the Hub, so they are untrusted code: they run in Jinja2's
`ImmutableSandboxedEnvironment` with `trim_blocks` and `lstrip_blocks`, the `loopcontrols` extension,
transformers' globals (`raise_exception`, `strftime_now`, a `dict` and a `namespace` that refuse
underscore names) and its `tojson` (no HTML escaping), and the `{% generation %}` block that marks
assistant text. Everything a template sees is rebuilt from plain JSON types first.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from flaxformers.tokenizers.tools import json_schema

Message = Mapping[str, Any]
CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "  # marks the end of the final message to cut the render there


class ChatTemplateError(ValueError):
    """A chat template is missing, or cannot render the conversation."""


@lru_cache(maxsize=32)
def compile_template(template: str):
    """A compiled template in transformers' sandboxed environment (cached: chats reuse one template)."""
    try:
        import jinja2
    except ImportError as e:
        raise ImportError("Chat templates need Jinja2: pip install 'flaxformers[chat]' (or jinja2>=3.1.6).") from e
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlocks(Extension):
        """`{% generation %}...{% endgeneration %}`: records where assistant text lands in the render."""

        tags = {"generation"}

        def __init__(self, environment):
            super().__init__(environment)
            environment.extend(generation_spans=None, rendered_so_far=None)

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_mark", [jinja2.nodes.ContextReference()]), [], [],
                                          body).set_lineno(lineno)

        def _mark(self, context, caller):
            text = caller()
            env = self.environment
            if env.generation_spans is not None:  # the render so far is the text of the pieces already written
                env.generation_spans.append((len("".join(env.rendered_so_far)), text))
            return text

    def raise_exception(message: str):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    class SafeNamespace(jinja2.utils.Namespace):
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                _refuse_private(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            _refuse_private(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

    def _refuse_private(name):
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"Chat templates cannot set underscore attributes ({name!r}).")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlocks, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt),
                       dict=_SafeDict(), namespace=SafeNamespace)
    try:
        return env.from_string(template)
    except jinja2.exceptions.TemplateSyntaxError as e:
        raise ChatTemplateError(f"The chat template does not parse (line {e.lineno}): {e.message}") from e


class _SafeDict:
    """`dict(...)` inside templates, without the attributes a sandbox escape would use."""

    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)

    def fromkeys(self, *args, **kwargs):
        return dict.fromkeys(*args, **kwargs)


def plain_data(value: Any) -> Any:
    """`value` rebuilt from JSON types (rich objects become inert "<TypeName>" placeholders)."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    for base in (bool, str, int, float):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, Mapping):
        return {plain_data(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain_data(v) for v in value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return plain_data(value.item())  # numpy scalars
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):
        return plain_data(value.model_dump())
    return f"<{type(value).__name__}>"


# --- rendering -------------------------------------------------------------------------------------
def _cut_at_continue_tag(rendered: str, final: str) -> str:
    if final.strip() not in rendered or CONTINUE_TAG.strip() not in rendered:
        raise ChatTemplateError("continue_final_message is set, but the template dropped part of the final message.")
    at = rendered.rindex(CONTINUE_TAG.strip())
    return rendered[:at] if rendered[at:at + len(CONTINUE_TAG)] == CONTINUE_TAG else rendered[:at].rstrip()


def _tag_final_message(chat: list[dict], field: str, template: str) -> str:
    """Append the continue tag to the final message's `field`; return the text to continue."""
    final = chat[-1].get(field) if chat else None
    if final is None:
        raise ChatTemplateError(f"continue_final_message is set, but the final message has no {field!r}.")
    if field not in template:
        raise ChatTemplateError(f"continue_final_message={field!r}, but the chat template never reads {field!r}.")
    if isinstance(final, list | tuple):
        for block in reversed(final):
            if "text" in block:
                text, block["text"] = block["text"], block["text"] + CONTINUE_TAG
                return text
        raise ChatTemplateError("continue_final_message is set, but the final message has no text block.")
    chat[-1][field] = final + CONTINUE_TAG
    return final


def render(
    conversation: list[Message],
    template: str,
    *,
    tools: list[dict | Callable] | None = None,
    documents: list[dict] | None = None,
    add_generation_prompt: bool = False,
    continue_final_message: bool | str = False,
    assistant_spans: list | None = None,
    **variables: Any,
) -> str:
    """One conversation rendered by `template`; `assistant_spans` (a list) receives the (start, text)
    of each `{% generation %}` block."""
    if continue_final_message and add_generation_prompt:
        raise ChatTemplateError("continue_final_message and add_generation_prompt cannot both be set: continue the "
                                "final message, or open a new assistant message.")
    schemas = None if tools is None else [t if isinstance(t, Mapping) else json_schema(t) for t in tools]
    chat = plain_data([{k: v for k, v in dict(m).items() if v is not None} for m in conversation])
    if not all(isinstance(m, dict) for m in chat):
        raise ChatTemplateError("Each chat message must be a dict with 'role' and 'content'.")
    final = None
    if continue_final_message:
        field = continue_final_message if isinstance(continue_final_message, str) else "content"
        final = _tag_final_message(chat, field, template)
    compiled = compile_template(template)
    import jinja2

    context = dict(messages=chat, tools=plain_data(schemas), documents=plain_data(documents),
                   add_generation_prompt=add_generation_prompt, **plain_data(variables))
    try:
        if assistant_spans is None:
            rendered = compiled.render(**context)
        else:
            rendered = _render_tracking(compiled, assistant_spans, context)
    except jinja2.exceptions.TemplateError as e:
        raise ChatTemplateError(f"The chat template could not render this conversation: {e}") from e
    return _cut_at_continue_tag(rendered, final) if final is not None else rendered


_TRACKING = threading.Lock()  # the spans live on the (shared, cached) environment while one render runs


def _render_tracking(compiled, spans: list, context: dict[str, Any]) -> str:
    """Render piece by piece, so each `{% generation %}` block knows its offset in the output."""
    env, pieces = compiled.environment, []
    with _TRACKING:
        env.generation_spans, env.rendered_so_far = spans, pieces
        try:
            for piece in compiled.root_render_func(compiled.new_context(context)):
                pieces.append(piece)
        finally:
            env.generation_spans = env.rendered_so_far = None
    return "".join(pieces)


__all__ = ["ChatTemplateError", "compile_template", "plain_data", "render"]

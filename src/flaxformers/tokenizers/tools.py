"""Tool schemas for chat templates: the JSON schema transformers builds from a typed Python function.

`json_schema(function)` reads the type hints (basic types, Enum, Literal, unions, list/tuple/dict) and a
Google-style docstring (description, `Args:` with an optional `(choices: [...])`, `Returns:`), and
returns `{"type": "function", "function": {"name", "description", "parameters", ["return"]}}`,
equal to `transformers.utils.get_json_schema`, so templates render tools the same way.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from typing import Any

_SCALARS = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}
_CONTAINERS = {list: "array", tuple: "array", dict: "object"}
_SECTION = re.compile(r"^\s*(Args|Returns|Raises):\s*$", re.M)


class ToolSchemaError(ValueError):
    """A tool function lacks the type hints or docstring its schema needs."""


def _enum_schema(values: list) -> dict[str, Any]:
    kinds = list(dict.fromkeys(_SCALARS[type(v)] for v in values))
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of one type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is None:
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return _enum_schema([member.value for member in hint])
        if hint is Any:
            return {}
        if hint in _SCALARS or hint in _CONTAINERS:
            return {"type": _SCALARS.get(hint) or _CONTAINERS[hint]}
    elif origin in (typing.Union, types.UnionType):
        options = [type_schema(a) for a in args if a is not type(None)]
        if len(options) == 1:
            schema = options[0]
        elif all(o.keys() == {"type"} and isinstance(o["type"], str) for o in options):
            names = sorted({o["type"] for o in options})
            schema = {"type": names[0] if len(names) == 1 else names}
        else:
            schema = {"anyOf": options}
        return {**schema, "nullable": True} if type(None) in args else schema
    elif origin is typing.Literal and args:
        return _enum_schema(list(args))
    elif origin is list:
        return {"type": "array", **({"items": type_schema(args[0])} if args else {})}
    elif origin is tuple and len(args) > 1 and ... not in args:
        return {"type": "array", "prefixItems": [type_schema(a) for a in args]}
    elif origin is dict:
        return {"type": "object", **({"additionalProperties": type_schema(args[1])} if len(args) == 2 else {})}
    raise ToolSchemaError(f"Cannot write the type hint {hint!r} as a JSON schema: use basic types, Enum, Literal, "
                          "unions and list/dict of those, or pass the tool as a schema dict.")


def _sections(doc: str) -> tuple[str, str, str]:
    """(description, Args block, Returns block) of a Google-style docstring."""
    parts = _SECTION.split(doc)
    found = dict(zip(parts[1::2], parts[2::2]))
    return parts[0].strip(), found.get("Args", ""), found.get("Returns", "").strip()


def _argument_docs(block: str) -> dict[str, str]:
    """`name: description` entries (descriptions may continue on deeper-indented lines)."""
    lines = [line for line in block.split("\n") if line.strip()]
    docs: dict[str, str] = {}
    indent, name = None, None
    for line in lines:
        match = re.match(r"^([ \t]*)(\w+):\s*(.*)$", line)
        depth = len(line) - len(line.lstrip())
        if match and (indent is None or depth <= indent):
            indent, name = depth, match.group(2)
            docs[name] = match.group(3).strip()
        elif name is not None:
            docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs


def json_schema(function: Callable) -> dict[str, Any]:
    """The tool schema of a typed function with a Google-style docstring."""
    name = getattr(function, "__name__", "operation")
    doc = (inspect.getdoc(function) or "").strip()
    if not doc:
        raise ToolSchemaError(f"Tool {name!r} has no docstring; it needs a description and an Args: section.")
    description, args_block, returns_doc = _sections(doc)
    arg_docs = _argument_docs(args_block)
    signature = inspect.signature(function)
    params = [p for p in signature.parameters.values()
              if not (p.name in ("self", "cls") and p.annotation is inspect.Parameter.empty)]
    hints = typing.get_type_hints(function)
    properties: dict[str, Any] = {}
    for param in params:
        if param.name not in hints:
            raise ToolSchemaError(f"Argument {param.name!r} of tool {name!r} has no type hint.")
        if param.name not in arg_docs:
            raise ToolSchemaError(f"The docstring of tool {name!r} does not describe argument {param.name!r}.")
        schema, text = type_schema(hints[param.name]), arg_docs[param.name]
        choices = re.search(r"\(choices:\s*(.*?)\)\s*$", text, flags=re.I)
        if choices:
            schema["enum"] = json.loads(choices.group(1))
            text = text[:choices.start()].strip()
        properties[param.name] = {**schema, "description": text}
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    parameters = {"type": "object", "properties": properties, **({"required": required} if required else {})}
    out: dict[str, Any] = {"name": name, "description": description, "parameters": parameters}
    if "return" in hints:
        try:
            out["return"] = {**type_schema(hints["return"]), **({"description": returns_doc} if returns_doc else {})}
        except ToolSchemaError:
            pass  # transformers leaves an unwritable return type out
    return {"type": "function", "function": out}


__all__ = ["ToolSchemaError", "json_schema", "type_schema"]

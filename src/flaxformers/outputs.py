"""Model outputs: dataclasses that also act as dicts and tuples, like transformers' ModelOutput.

`out.logits`, `out["logits"]` and `out[0]` all work; fields left at None are skipped by key and tuple
access. Outputs are JAX pytrees, so they pass through `jax.jit` and `jax.tree_util`.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

import jax

Array = Any


class ModelOutput(OrderedDict):
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Flatten every key, so entries set after construction (`past_key_values`) survive jit.
        jax.tree_util.register_pytree_node(cls, lambda out: (list(out.values()), tuple(out.keys())), cls._unflatten)

    @classmethod
    def _unflatten(cls, keys: tuple[str, ...], children: list[Any]) -> ModelOutput:
        out = cls()
        for key, value in zip(keys, children):
            out[key] = value
        return out

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                super().__setitem__(field.name, value)

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            return dict(self.items())[key]
        return self.to_tuple()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.keys() and value is not None:
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self[k] for k in self.keys())

    def replace(self, **updates: Any) -> ModelOutput:
        return dataclasses.replace(self, **updates)

    # OrderedDict's own hashing/eq would compare only the dict part; keep it but make repr readable.
    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={type(v).__name__}" for k, v in self.items())
        return f"{type(self).__name__}({fields})"


def output_class(name: str, *fields: str) -> type[ModelOutput]:
    """An output class with the given fields, all defaulting to None."""
    cls = dataclasses.make_dataclass(
        name, [(f, Any, dataclasses.field(default=None)) for f in fields], bases=(ModelOutput,), eq=False
    )
    cls.__module__ = __name__
    return cls


FlaxBaseModelOutput = output_class("FlaxBaseModelOutput", "last_hidden_state", "hidden_states", "attentions")
FlaxBaseModelOutputWithPast = output_class(
    "FlaxBaseModelOutputWithPast", "last_hidden_state", "past_key_values", "hidden_states", "attentions"
)
FlaxBaseModelOutputWithPastAndCrossAttentions = output_class(
    "FlaxBaseModelOutputWithPastAndCrossAttentions",
    "last_hidden_state", "past_key_values", "hidden_states", "attentions", "cross_attentions",
)
FlaxBaseModelOutputWithPooling = output_class(
    "FlaxBaseModelOutputWithPooling", "last_hidden_state", "pooler_output", "hidden_states", "attentions"
)
FlaxBaseModelOutputWithPoolingAndCrossAttentions = output_class(
    "FlaxBaseModelOutputWithPoolingAndCrossAttentions",
    "last_hidden_state", "pooler_output", "hidden_states", "past_key_values", "attentions", "cross_attentions",
)
FlaxBaseModelOutputWithNoAttention = output_class("FlaxBaseModelOutputWithNoAttention", "last_hidden_state",
                                                  "hidden_states")
FlaxBaseModelOutputWithPoolingAndNoAttention = output_class(
    "FlaxBaseModelOutputWithPoolingAndNoAttention", "last_hidden_state", "pooler_output", "hidden_states"
)
FlaxImageClassifierOutputWithNoAttention = output_class("FlaxImageClassifierOutputWithNoAttention", "logits",
                                                        "hidden_states")
FlaxCausalLMOutput = output_class("FlaxCausalLMOutput", "logits", "hidden_states", "attentions")
FlaxCausalLMOutputWithCrossAttentions = output_class(
    "FlaxCausalLMOutputWithCrossAttentions", "logits", "past_key_values", "hidden_states", "attentions",
    "cross_attentions",
)
FlaxMaskedLMOutput = output_class("FlaxMaskedLMOutput", "logits", "hidden_states", "attentions")
FlaxNextSentencePredictorOutput = output_class("FlaxNextSentencePredictorOutput", "logits", "hidden_states", "attentions")
FlaxSequenceClassifierOutput = output_class("FlaxSequenceClassifierOutput", "logits", "hidden_states", "attentions")
FlaxMultipleChoiceModelOutput = output_class("FlaxMultipleChoiceModelOutput", "logits", "hidden_states", "attentions")
FlaxTokenClassifierOutput = output_class("FlaxTokenClassifierOutput", "logits", "hidden_states", "attentions")
FlaxQuestionAnsweringModelOutput = output_class(
    "FlaxQuestionAnsweringModelOutput", "start_logits", "end_logits", "hidden_states", "attentions"
)
def stack_output(hidden: Array, all_hidden: tuple | None, attentions: tuple | None, cross: tuple | None = None, *,
                 output_hidden_states: bool, return_dict: bool,
                 output_type: type[ModelOutput] = FlaxBaseModelOutput) -> Any:
    """What a base model returns after its layer stack (and final norm): the last hidden state [B, T, D]
    joins the hidden states, as in 4.57; a tuple without the unset entries, or `output_type` (whose
    `cross_attentions`, when it has one, takes `cross`)."""
    if output_hidden_states:
        all_hidden = all_hidden + (hidden,)
    if not return_dict:
        return tuple(v for v in (hidden, all_hidden, attentions, cross) if v is not None)
    fields = dict(last_hidden_state=hidden, hidden_states=all_hidden, attentions=attentions)
    if "cross_attentions" in output_type.__dataclass_fields__:
        fields["cross_attentions"] = cross
    return output_type(**fields)



_SEQ2SEQ_FIELDS = ("past_key_values", "decoder_hidden_states", "decoder_attentions", "cross_attentions",
                   "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")
FlaxSeq2SeqModelOutput = output_class("FlaxSeq2SeqModelOutput", "last_hidden_state", *_SEQ2SEQ_FIELDS)
FlaxSeq2SeqLMOutput = output_class("FlaxSeq2SeqLMOutput", "logits", *_SEQ2SEQ_FIELDS)
FlaxSeq2SeqSequenceClassifierOutput = output_class("FlaxSeq2SeqSequenceClassifierOutput", "logits", *_SEQ2SEQ_FIELDS)
FlaxSeq2SeqQuestionAnsweringModelOutput = output_class(
    "FlaxSeq2SeqQuestionAnsweringModelOutput", "start_logits", "end_logits", *_SEQ2SEQ_FIELDS
)

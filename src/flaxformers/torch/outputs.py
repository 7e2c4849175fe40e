"""Output classes of the PyTorch twin, with transformers' names and field order.

They are `flaxformers.outputs.ModelOutput`s: `out.logits`, `out["logits"]` and `out[0]` all work,
and `to_tuple()` gives what `return_dict=False` returns.
"""

from __future__ import annotations

from flaxformers.outputs import output_class


def _torch_output(name: str, *fields: str):
    cls = output_class(name, *fields)
    cls.__module__ = __name__
    return cls


BaseModelOutputWithPastAndCrossAttentions = _torch_output(
    "BaseModelOutputWithPastAndCrossAttentions",
    "last_hidden_state", "past_key_values", "hidden_states", "attentions", "cross_attentions",
)
CausalLMOutputWithCrossAttentions = _torch_output(
    "CausalLMOutputWithCrossAttentions",
    "loss", "logits", "past_key_values", "hidden_states", "attentions", "cross_attentions",
)
GPT2DoubleHeadsModelOutput = _torch_output(
    "GPT2DoubleHeadsModelOutput",
    "loss", "mc_loss", "logits", "mc_logits", "past_key_values", "hidden_states", "attentions",
)
SequenceClassifierOutputWithPast = _torch_output(
    "SequenceClassifierOutputWithPast", "loss", "logits", "past_key_values", "hidden_states", "attentions"
)
TokenClassifierOutput = _torch_output("TokenClassifierOutput", "loss", "logits", "hidden_states", "attentions")
QuestionAnsweringModelOutput = _torch_output(
    "QuestionAnsweringModelOutput", "loss", "start_logits", "end_logits", "hidden_states", "attentions"
)

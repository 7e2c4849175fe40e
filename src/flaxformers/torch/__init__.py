"""The PyTorch twin of GPT-2: transformers' six GPT-2 classes, state_dict-identical, over flaxformers' checkpoints.

    from flaxformers.torch import GPT2LMHeadModel
    model = GPT2LMHeadModel.from_pretrained("path/or/repo", attn_implementation="sdpa")

Needs torch (imported on first use of this package; the rest of flaxformers does not).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("flaxformers.torch needs PyTorch: pip install torch.") from e

from flaxformers.models.gpt2.configuration import GPT2Config
from flaxformers.torch.cache import DynamicCache
from flaxformers.torch.convert import flax_from_torch, flax_params_from_torch, torch_from_flax
from flaxformers.torch.modeling_gpt2 import (
    Conv1D,
    GPT2DoubleHeadsModel,
    GPT2ForQuestionAnswering,
    GPT2ForSequenceClassification,
    GPT2ForTokenClassification,
    GPT2LMHeadModel,
    GPT2Model,
    GPT2PreTrainedModel,
)
from flaxformers.torch.outputs import (
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    GPT2DoubleHeadsModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutputWithPast,
    TokenClassifierOutput,
)
from flaxformers.torch.tf_checkpoint import load_tf_variables_in_gpt2, load_tf_weights_in_gpt2

__all__ = [
    "BaseModelOutputWithPastAndCrossAttentions",
    "CausalLMOutputWithCrossAttentions",
    "Conv1D",
    "DynamicCache",
    "GPT2Config",
    "GPT2DoubleHeadsModel",
    "GPT2DoubleHeadsModelOutput",
    "GPT2ForQuestionAnswering",
    "GPT2ForSequenceClassification",
    "GPT2ForTokenClassification",
    "GPT2LMHeadModel",
    "GPT2Model",
    "GPT2PreTrainedModel",
    "QuestionAnsweringModelOutput",
    "SequenceClassifierOutputWithPast",
    "TokenClassifierOutput",
    "flax_from_torch",
    "flax_params_from_torch",
    "load_tf_variables_in_gpt2",
    "load_tf_weights_in_gpt2",
    "torch_from_flax",
]

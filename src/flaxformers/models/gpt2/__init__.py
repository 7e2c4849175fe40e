from flaxformers.models.gpt2.configuration import GPT2Config
from flaxformers.models.gpt2.modeling import FlaxGPT2LMHeadModel, FlaxGPT2Model, FlaxGPT2PreTrainedModel

__all__ = ["GPT2Config", "FlaxGPT2Model", "FlaxGPT2LMHeadModel", "FlaxGPT2PreTrainedModel"]

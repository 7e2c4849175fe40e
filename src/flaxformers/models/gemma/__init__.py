from flaxformers.models.gemma.configuration import Gemma2Config, Gemma3TextConfig, GemmaConfig
from flaxformers.models.gemma.modeling import (
    FlaxGemma2ForCausalLM,
    FlaxGemma2Model,
    FlaxGemma3ForCausalLM,
    FlaxGemma3Model,
    FlaxGemmaForCausalLM,
    FlaxGemmaModel,
    FlaxGemmaPreTrainedModel,
)

__all__ = [
    "GemmaConfig", "FlaxGemmaModel", "FlaxGemmaForCausalLM", "FlaxGemmaPreTrainedModel",
    "Gemma2Config", "FlaxGemma2Model", "FlaxGemma2ForCausalLM",
    "Gemma3TextConfig", "FlaxGemma3Model", "FlaxGemma3ForCausalLM",
]

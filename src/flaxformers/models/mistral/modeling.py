"""Mistral in Flax: Llama's modules under `MistralConfig` (every layer slides over `sliding_window` keys)."""

from __future__ import annotations

from flaxformers.models.llama import FlaxLlamaPreTrainedModel
from flaxformers.models.mistral.configuration import MistralConfig
from flaxformers.nn.decoder import DecoderForCausalLMModule, DecoderModule


class FlaxMistralPreTrainedModel(FlaxLlamaPreTrainedModel):
    config_class = MistralConfig


class FlaxMistralModel(FlaxMistralPreTrainedModel):
    module_class = DecoderModule


class FlaxMistralForCausalLM(FlaxMistralPreTrainedModel):
    module_class = DecoderForCausalLMModule
    is_causal_lm = True


__all__ = ["FlaxMistralPreTrainedModel", "FlaxMistralModel", "FlaxMistralForCausalLM"]

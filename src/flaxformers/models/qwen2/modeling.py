"""Qwen2 in Flax: Llama's modules under `Qwen2Config` (q/k/v biases, optional sliding-window layers)."""

from __future__ import annotations

from flaxformers.models.llama import FlaxLlamaPreTrainedModel
from flaxformers.models.qwen2.configuration import Qwen2Config
from flaxformers.nn.decoder import DecoderForCausalLMModule, DecoderModule


class FlaxQwen2PreTrainedModel(FlaxLlamaPreTrainedModel):
    config_class = Qwen2Config


class FlaxQwen2Model(FlaxQwen2PreTrainedModel):
    module_class = DecoderModule


class FlaxQwen2ForCausalLM(FlaxQwen2PreTrainedModel):
    module_class = DecoderForCausalLMModule
    is_causal_lm = True


__all__ = ["FlaxQwen2PreTrainedModel", "FlaxQwen2Model", "FlaxQwen2ForCausalLM"]

"""Qwen3 in Flax: Llama's modules under `Qwen3Config` (q/k norms, optional sliding-window layers)."""

from __future__ import annotations

from flaxformers.models.llama import FlaxLlamaPreTrainedModel
from flaxformers.models.qwen3.configuration import Qwen3Config
from flaxformers.nn.decoder import DecoderForCausalLMModule, DecoderModule


class FlaxQwen3PreTrainedModel(FlaxLlamaPreTrainedModel):
    config_class = Qwen3Config


class FlaxQwen3Model(FlaxQwen3PreTrainedModel):
    module_class = DecoderModule


class FlaxQwen3ForCausalLM(FlaxQwen3PreTrainedModel):
    module_class = DecoderForCausalLMModule
    is_causal_lm = True


__all__ = ["FlaxQwen3PreTrainedModel", "FlaxQwen3Model", "FlaxQwen3ForCausalLM"]

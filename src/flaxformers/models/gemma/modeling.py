"""Gemma, Gemma 2 and Gemma 3 (text) in Flax: the shared RoPE decoder (`flaxformers.nn.decoder`) under their configs.

What is Gemma's own, the configs answer: `(1 + w)` RMSNorms, embeddings scaled by sqrt(hidden), GeGLU
MLPs, grouped-query attention with a free `head_dim`. Gemma 2 adds norms after attention and around
the MLP, `query_pre_attn_scalar`, sliding-window layers and logit soft-capping; Gemma 3 adds q/k norms
and a separate rope base for the sliding layers. Parameter names are transformers 4.x Flax Gemma's
(`model/layers/0/self_attn/q_proj/kernel`, `.../input_layernorm/weight`), which are PyTorch's names too.
"""

from __future__ import annotations

from flaxformers.models.gemma.configuration import Gemma2Config, Gemma3TextConfig, GemmaConfig
from flaxformers.nn.decoder import DecoderForCausalLMModule, DecoderModule, DecoderPreTrainedModel


class FlaxGemmaPreTrainedModel(DecoderPreTrainedModel):
    config_class = GemmaConfig


class FlaxGemmaModel(FlaxGemmaPreTrainedModel):
    module_class = DecoderModule


class FlaxGemmaForCausalLM(FlaxGemmaPreTrainedModel):
    module_class = DecoderForCausalLMModule
    is_causal_lm = True


# Gemma 2 and Gemma 3 differ only by config: the same modules, under their own config classes.
class FlaxGemma2Model(FlaxGemmaModel):
    config_class = Gemma2Config


class FlaxGemma2ForCausalLM(FlaxGemmaForCausalLM):
    config_class = Gemma2Config


class FlaxGemma3Model(FlaxGemmaModel):
    config_class = Gemma3TextConfig


class FlaxGemma3ForCausalLM(FlaxGemmaForCausalLM):
    config_class = Gemma3TextConfig


__all__ = [
    "FlaxGemmaPreTrainedModel", "FlaxGemmaModel", "FlaxGemmaForCausalLM",
    "FlaxGemma2Model", "FlaxGemma2ForCausalLM", "FlaxGemma3Model", "FlaxGemma3ForCausalLM",
]

"""Llama in Flax: the shared RoPE decoder (`flaxformers.nn.decoder`) under `LlamaConfig`.

transformers 4.57's `FlaxLlamaModel` / `FlaxLlamaForCausalLM`, with its param tree
(`model/embed_tokens/embedding`, `model/layers/0/self_attn/q_proj/kernel`, `lm_head/kernel`) and
`init_cache` layout; the numbers are transformers 5 PyTorch's, grouped-query attention, every RoPE
variant, the attention and MLP bias switches and a tied head (read from the embedding) included.
"""

from __future__ import annotations

from flaxformers.models.llama.configuration import LlamaConfig
from flaxformers.nn.decoder import DecoderForCausalLMModule, DecoderModule, DecoderPreTrainedModel


class FlaxLlamaPreTrainedModel(DecoderPreTrainedModel):
    config_class = LlamaConfig


class FlaxLlamaModel(FlaxLlamaPreTrainedModel):
    module_class = DecoderModule


class FlaxLlamaForCausalLM(FlaxLlamaPreTrainedModel):
    module_class = DecoderForCausalLMModule
    is_causal_lm = True


__all__ = ["FlaxLlamaPreTrainedModel", "FlaxLlamaModel", "FlaxLlamaForCausalLM"]

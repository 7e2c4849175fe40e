"""The config side of the shared RoPE decoder (`nn/decoder.py`): its questions, their usual answers, checks.

Family configs (Llama, Mistral, Qwen, Gemma) subclass `DecoderConfig`, declare their `config.json`
keys in `__init__` as transformers does, and override only the answers that differ. No jax here.
"""

from __future__ import annotations

from typing import ClassVar

from flaxformers.configuration_utils import PretrainedConfig
from flaxformers.nn.rope_config import FULL, SLIDING, RopeSpec, rope_parameters, rope_spec


class DecoderConfig(PretrainedConfig):
    """Expects the keys `vocab_size`, `hidden_size`, `intermediate_size`, `num_hidden_layers`,
    `num_attention_heads`, `num_key_value_heads`, `head_dim`, `hidden_act`, `max_position_embeddings`,
    `initializer_range`, `rms_norm_eps`, `attention_bias`, `attention_dropout` and the RoPE keys."""

    sandwich_norms: ClassVar[bool] = False  # norms after attention and around the MLP
    qk_norm: ClassVar[bool] = False  # RMSNorm on each query and key head
    norm_offset: ClassVar[float] = 0.0  # 1.0: RMSNorms scale by (1 + w)
    scale_embeddings: ClassVar[bool] = False  # embeddings times sqrt(hidden_size)
    mlp_bias: ClassVar[bool] = False
    attention_softcap: ClassVar[float | None] = None
    final_softcap: ClassVar[float | None] = None

    @property
    def layer_types(self) -> list[str]:
        return [FULL] * self.num_hidden_layers

    def window_for(self, layer_type: str) -> int | None:
        """How many keys back a layer of this type sees (None: all)."""
        return None

    @property
    def attention_scale(self) -> float:
        return self.head_dim**-0.5

    @property
    def hidden_activation_name(self) -> str:
        return self.hidden_act

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias

    @property
    def o_bias(self) -> bool:
        return self.attention_bias

    def rope_for(self, layer_type: str) -> RopeSpec:
        """The rotary embedding of a layer type."""
        return rope_spec(self._rope_params(layer_type), self.head_dim, self.max_position_embeddings)

    def _rope_params(self, layer_type: str) -> dict:
        return rope_parameters(self, layer_type)

    @property
    def position_limit(self) -> int | None:
        """Dynamic NTK RoPE stretches itself past `max_position_embeddings`; the others stop there."""
        if any(self.rope_for(t).rope_type == "dynamic" for t in set(self.layer_types)):
            return None
        return self.max_position_embeddings

    def _validate(self) -> None:
        n, k = self.num_attention_heads, self.num_key_value_heads
        self._check(min(self.vocab_size, self.hidden_size, self.intermediate_size, self.num_hidden_layers, n, k,
                        self.head_dim) > 0,
                    "vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, "
                    "num_key_value_heads and head_dim must be positive.")
        self._check(n % k == 0, f"num_attention_heads={n} must be a multiple of num_key_value_heads={k} "
                                "(each key/value head serves a whole group of query heads).")
        self._check(self.head_dim % 2 == 0, f"head_dim={self.head_dim} must be even for rotary embeddings.")
        self._check_activation("hidden_activation" if hasattr(self, "hidden_activation") else "hidden_act",
                               self.hidden_activation_name)
        self._check(len(self.layer_types) == self.num_hidden_layers,
                    f"layer_types has {len(self.layer_types)} entries; expected num_hidden_layers="
                    f"{self.num_hidden_layers}.")
        bad = sorted(set(self.layer_types) - {FULL, SLIDING})
        self._check(not bad, f"layer_types holds {bad}; expected only {FULL!r} and {SLIDING!r}.")
        if SLIDING in self.layer_types:
            window = self.window_for(SLIDING)
            self._check(window is not None and window > 0,
                        f"sliding_window={window} must be a positive number of tokens when layer_types has "
                        "sliding layers.")
        for layer_type in sorted(set(self.layer_types)):
            try:
                self.rope_for(layer_type)
            except ValueError as e:
                self._check(False, f"{e} ({layer_type} layers)")


__all__ = ["DecoderConfig"]

"""Gemma, Gemma 2 and Gemma 3 (text) configs: the keys of their `config.json` files.

One architecture, three model types. Each config answers the questions of the shared decoder
(`flaxformers.nn.decoder`: `layer_types`, `rope_for`, `attention_scale`, `attention_softcap`,
`hidden_activation_name`, and the class switches `sandwich_norms` / `qk_norm` / `norm_offset`), so
no module holds `model_type` branches.

RoPE keys are read in both spellings: transformers 4.x (`rope_theta`, `rope_scaling`,
`rope_local_base_freq`) and transformers 5 (`rope_parameters`, flat or nested per layer type).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from flaxformers.nn.decoder_config import DecoderConfig
from flaxformers.nn.rope_config import FULL, SLIDING

logger = logging.getLogger("flaxformers")


class GemmaConfig(DecoderConfig):
    model_type = "gemma"
    norm_offset = 1.0  # RMSNorms scale by (1 + w)
    scale_embeddings = True  # embeddings times sqrt(hidden_size)

    def __init__(
        self,
        vocab_size: int = 256000,
        hidden_size: int = 3072,
        intermediate_size: int = 24576,
        num_hidden_layers: int = 28,
        num_attention_heads: int = 16,
        num_key_value_heads: int = 16,
        head_dim: int = 256,
        hidden_act: str = "gelu_pytorch_tanh",
        hidden_activation: str | None = None,
        max_position_embeddings: int = 8192,
        initializer_range: float = 0.02,
        rms_norm_eps: float = 1e-6,
        use_cache: bool = True,
        pad_token_id: int | None = 0,
        eos_token_id: int | list[int] | None = 1,
        bos_token_id: int | None = 2,
        tie_word_embeddings: bool = True,
        rope_theta: float = 10000.0,
        rope_scaling: dict | None = None,
        rope_parameters: dict | None = None,
        attention_bias: bool = False,
        attention_dropout: float = 0.0,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim
        self.hidden_act = hidden_act
        self.hidden_activation = hidden_activation
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        self.rope_parameters = rope_parameters
        self.attention_bias = attention_bias
        self.attention_dropout = attention_dropout
        super().__init__(
            pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings, use_cache=use_cache, **kwargs,
        )
        self._validate()

    @property
    def hidden_activation_name(self) -> str:
        """The MLP activation. transformers' legacy `hidden_act="gelu"` meant the tanh approximation."""
        if self.hidden_activation is not None:
            return self.hidden_activation
        return "gelu_pytorch_tanh" if self.hidden_act == "gelu" else self.hidden_act

    # --- validation -------------------------------------------------------------------------------
    def _validate(self) -> None:
        if self.hidden_activation is None and self.hidden_act == "gelu":
            logger.warning(
                'This Gemma config has the legacy hidden_act="gelu", which Gemma checkpoints use to mean the tanh '
                'approximation: using "gelu_pytorch_tanh". To really use exact GeLU, set '
                'config.hidden_activation="gelu" instead. See https://github.com/huggingface/transformers/pull/29402.'
            )
        self._check(not getattr(self, "use_bidirectional_attention", None),
                    "use_bidirectional_attention=True (embedding models) is not supported; set it to false.")
        super()._validate()


class Gemma2Config(GemmaConfig):
    model_type = "gemma2"
    sandwich_norms = True

    def __init__(
        self,
        vocab_size: int = 256000,
        hidden_size: int = 2304,
        intermediate_size: int = 9216,
        num_hidden_layers: int = 26,
        num_attention_heads: int = 8,
        num_key_value_heads: int = 4,
        head_dim: int = 256,
        hidden_activation: str | None = "gelu_pytorch_tanh",
        max_position_embeddings: int = 8192,
        query_pre_attn_scalar: float = 256,
        sliding_window: int | None = 4096,
        layer_types: list[str] | None = None,
        final_logit_softcapping: float | None = 30.0,
        attn_logit_softcapping: float | None = 50.0,
        **kwargs: Any,
    ):
        self.query_pre_attn_scalar = query_pre_attn_scalar
        self.sliding_window = sliding_window
        self.final_logit_softcapping = final_logit_softcapping
        self.attn_logit_softcapping = attn_logit_softcapping
        self._layer_types_given = layer_types
        super().__init__(
            vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
            num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
            num_key_value_heads=num_key_value_heads, head_dim=head_dim, hidden_activation=hidden_activation,
            max_position_embeddings=max_position_embeddings, **kwargs,
        )

    # Every `sliding_window_pattern`-th layer (1-based) is global; Gemma 2 alternates.
    _default_pattern: ClassVar[int] = 2

    @property
    def layer_types(self) -> list[str]:
        if self._layer_types_given is not None:
            return list(self._layer_types_given)
        pattern = self._pattern()
        return [FULL if (i + 1) % pattern == 0 else SLIDING for i in range(self.num_hidden_layers)]

    @layer_types.setter
    def layer_types(self, value: list[str] | None) -> None:
        self._layer_types_given = value

    def _pattern(self) -> int:
        return self._default_pattern

    @property
    def attention_scale(self) -> float:
        return float(self.query_pre_attn_scalar) ** -0.5

    @property
    def attention_softcap(self) -> float | None:
        return self.attn_logit_softcapping

    @property
    def final_softcap(self) -> float | None:
        return self.final_logit_softcapping

    def window_for(self, layer_type: str) -> int | None:
        return self.sliding_window if layer_type == SLIDING else None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["layer_types"] = self.layer_types  # written out, as transformers does
        return dict(sorted(out.items()))

    def _validate(self) -> None:
        super()._validate()
        self._check(self.query_pre_attn_scalar > 0,
                    f"query_pre_attn_scalar={self.query_pre_attn_scalar} must be positive.")
        for name in ("attn_logit_softcapping", "final_logit_softcapping"):
            value = getattr(self, name)
            self._check(value is None or value > 0, f"{name}={value} must be positive or null (no capping).")


class Gemma3TextConfig(Gemma2Config):
    model_type = "gemma3_text"
    qk_norm = True
    _default_pattern = 6

    def __init__(
        self,
        vocab_size: int = 262_208,
        max_position_embeddings: int = 131_072,
        rope_theta: float = 1_000_000.0,
        rope_local_base_freq: float = 10_000.0,
        final_logit_softcapping: float | None = None,
        attn_logit_softcapping: float | None = None,
        use_bidirectional_attention: bool | None = False,
        **kwargs: Any,
    ):
        self.rope_local_base_freq = rope_local_base_freq
        self.use_bidirectional_attention = use_bidirectional_attention
        # transformers writes the pattern as `_sliding_window_pattern`; older configs as `sliding_window_pattern`.
        pattern = kwargs.pop("sliding_window_pattern", None)
        private = kwargs.pop("_sliding_window_pattern", None)
        self.sliding_window_pattern = pattern if pattern is not None else private
        super().__init__(
            vocab_size=vocab_size, max_position_embeddings=max_position_embeddings, rope_theta=rope_theta,
            final_logit_softcapping=final_logit_softcapping, attn_logit_softcapping=attn_logit_softcapping, **kwargs,
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if out.get("sliding_window_pattern") is None:
            out.pop("sliding_window_pattern", None)
        return out

    def _pattern(self) -> int:
        return self.sliding_window_pattern if self.sliding_window_pattern is not None else self._default_pattern

    @property
    def attention_softcap(self) -> float | None:
        # transformers' Gemma 3 attention never applies attn_logit_softcapping (the key exists, unused).
        return None

    def _rope_params(self, layer_type: str) -> dict[str, Any]:
        # Nested per layer type; `rope_scaling` (4.x) scales the global layers only, and the local
        # layers default to `rope_local_base_freq`.
        params = self.rope_parameters or {}
        if FULL in params or SLIDING in params:
            params = params.get(layer_type) or {}
        elif layer_type == SLIDING:
            params = {}
        params = dict(params)
        if layer_type == FULL and self.rope_scaling:
            params.update(self.rope_scaling)
        default = self.rope_theta if layer_type == FULL else self.rope_local_base_freq
        return {"rope_theta": default, **params}

    def _validate(self) -> None:
        self._check(self._pattern() > 0, f"sliding_window_pattern={self._pattern()} must be positive.")
        super()._validate()


__all__ = ["GemmaConfig", "Gemma2Config", "Gemma3TextConfig"]

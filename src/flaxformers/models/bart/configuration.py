"""BartConfig, and what makes the BART-like encoder-decoders (mBART, Marian, Pegasus, Blenderbot,
BlenderbotSmall) differ: their config classes subclass this one with other defaults and another
`Architecture`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from flaxformers.configuration_utils import PretrainedConfig


@dataclass(frozen=True)
class Architecture:
    """The switches of the one BART-like transformer, fixed per model type (no config key sets them)."""

    pre_norm: bool = False  # LayerNorm before each sublayer (else after the residual sum)
    final_layer_norm: bool = False  # a `layer_norm` after the last layer of each stack
    layernorm_embedding: bool = True  # a `layernorm_embedding` on the embedded input
    decoder_norm_before_positions: bool = False  # the decoder normalises token embeddings before adding positions
    sinusoidal_positions: bool = False  # a fixed sin/cos table instead of learned `embed_positions`
    position_offset: int = 0  # learned positions are looked up at position + offset
    key_bias: bool = True  # the attention's k_proj has a bias (Whisper's has none)
    final_logits_bias: bool = True  # the LM head adds the checkpoint's `final_logits_bias` buffer


# The defaults the BART-like configs of transformers 4.57 share.
SHARED_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50265, "max_position_embeddings": 1024, "encoder_layers": 12, "encoder_ffn_dim": 4096,
    "encoder_attention_heads": 16, "decoder_layers": 12, "decoder_ffn_dim": 4096, "decoder_attention_heads": 16,
    "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0, "activation_function": "gelu", "d_model": 1024,
    "dropout": 0.1, "attention_dropout": 0.0, "activation_dropout": 0.0, "init_std": 0.02, "scale_embedding": False,
    "use_cache": True, "is_encoder_decoder": True,
}


class BartConfig(PretrainedConfig):
    model_type = "bart"
    attribute_map = {"num_attention_heads": "encoder_attention_heads", "hidden_size": "d_model",
                     "num_hidden_layers": "encoder_layers"}
    architecture: ClassVar[Architecture] = Architecture(position_offset=2)
    # transformers 4.57's defaults; the other families' configs start from SHARED_DEFAULTS too
    defaults: ClassVar[dict[str, Any]] = {
        **SHARED_DEFAULTS, "classifier_dropout": 0.0, "num_labels": 3, "pad_token_id": 1, "bos_token_id": 0,
        "eos_token_id": 2, "decoder_start_token_id": 2, "forced_eos_token_id": 2,
    }

    def __init__(self, **kwargs: Any):
        if "num_labels" in kwargs or "id2label" in kwargs:
            kwargs = {**{k: v for k, v in self.defaults.items() if k != "num_labels"}, **kwargs}
        else:
            kwargs = {**self.defaults, **kwargs}
        if kwargs.get("forced_bos_token_id") is None and kwargs.pop("force_bos_token_to_be_generated", False):
            kwargs["forced_bos_token_id"] = kwargs.get("bos_token_id")
        super().__init__(**kwargs)
        for heads, layers in (("encoder_attention_heads", "encoder"), ("decoder_attention_heads", "decoder")):
            self._check(self.d_model % getattr(self, heads) == 0,
                        f"d_model={self.d_model} must be divisible by {heads}={getattr(self, heads)}.")
            self._check(getattr(self, f"{layers}_layers") > 0, f"{layers}_layers must be positive.")
        self._check_activation("activation_function", self.activation_function)

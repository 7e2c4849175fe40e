"""WhisperConfig: transformers 4.57's keys and defaults (whisper-tiny's shape)."""

from __future__ import annotations

from typing import Any, ClassVar

from flaxformers.configuration_utils import PretrainedConfig
from flaxformers.models.bart.configuration import Architecture


class WhisperConfig(PretrainedConfig):
    model_type = "whisper"
    # `max_position_embeddings` (what the BART-like decoder stack and generate read) is the decoder's
    # learned positions; the encoder's come from the audio length.
    attribute_map = {"num_key_value_heads": "encoder_attention_heads", "num_attention_heads": "encoder_attention_heads",
                     "hidden_size": "d_model", "max_position_embeddings": "max_target_positions"}
    # Pre-norm layers with final layer norms, learned decoder positions, no key bias, no logits bias.
    architecture: ClassVar[Architecture] = Architecture(pre_norm=True, final_layer_norm=True,
                                                        layernorm_embedding=False, key_bias=False,
                                                        final_logits_bias=False)
    defaults: ClassVar[dict[str, Any]] = {
        "vocab_size": 51865, "num_mel_bins": 80, "encoder_layers": 4, "encoder_attention_heads": 6,
        "decoder_layers": 4, "decoder_attention_heads": 6, "decoder_ffn_dim": 1536, "encoder_ffn_dim": 1536,
        "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0, "decoder_start_token_id": 50257, "use_cache": True,
        "is_encoder_decoder": True, "activation_function": "gelu", "d_model": 384, "dropout": 0.0,
        "attention_dropout": 0.0, "activation_dropout": 0.0, "init_std": 0.02, "scale_embedding": False,
        "max_source_positions": 1500, "max_target_positions": 448, "pad_token_id": 50256, "bos_token_id": 50256,
        "eos_token_id": 50256, "suppress_tokens": None, "begin_suppress_tokens": [220, 50256],
        "use_weighted_layer_sum": False, "classifier_proj_size": 256, "apply_spec_augment": False,
        "mask_time_prob": 0.05, "mask_time_length": 10, "mask_time_min_masks": 2, "mask_feature_prob": 0.0,
        "mask_feature_length": 10, "mask_feature_min_masks": 0, "median_filter_width": 7,
    }

    def __init__(self, **kwargs: Any):
        kwargs = {**self.defaults, **kwargs}
        super().__init__(**kwargs)
        self.num_hidden_layers = self.encoder_layers
        for heads, layers in (("encoder_attention_heads", "encoder"), ("decoder_attention_heads", "decoder")):
            self._check(self.d_model % getattr(self, heads) == 0,
                        f"d_model={self.d_model} must be divisible by {heads}={getattr(self, heads)}.")
            self._check(getattr(self, f"{layers}_layers") > 0, f"{layers}_layers must be positive.")
        self._check_positive_ints("num_mel_bins", "max_source_positions", "max_target_positions")
        self._check_activation("activation_function", self.activation_function)

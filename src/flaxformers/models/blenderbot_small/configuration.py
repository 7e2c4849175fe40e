"""BlenderbotSmallConfig: BART's keys with BlenderbotSmall's defaults; post-norm layers, learned positions
without offset, and a decoder that normalises its token embeddings before adding positions."""

from __future__ import annotations

from flaxformers.models.bart.configuration import SHARED_DEFAULTS, Architecture, BartConfig


class BlenderbotSmallConfig(BartConfig):
    model_type = "blenderbot-small"
    architecture = Architecture(decoder_norm_before_positions=True)
    defaults = {**SHARED_DEFAULTS, "max_position_embeddings": 512, "encoder_layers": 8, "encoder_ffn_dim": 2048,
                "encoder_attention_heads": 16, "decoder_layers": 8, "decoder_ffn_dim": 2048,
                "decoder_attention_heads": 16, "d_model": 512, "decoder_start_token_id": 1, "pad_token_id": 0,
                "bos_token_id": 1, "eos_token_id": 2, "forced_eos_token_id": 2}

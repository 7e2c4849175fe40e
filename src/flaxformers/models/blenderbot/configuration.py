"""BlenderbotConfig: BART's keys with Blenderbot's defaults; pre-norm layers with final layer norms, learned
positions without offset."""

from __future__ import annotations

from flaxformers.models.bart.configuration import SHARED_DEFAULTS, Architecture, BartConfig


class BlenderbotConfig(BartConfig):
    model_type = "blenderbot"
    architecture = Architecture(pre_norm=True, final_layer_norm=True, layernorm_embedding=False)
    defaults = {**SHARED_DEFAULTS, "vocab_size": 8008, "max_position_embeddings": 128, "encoder_layers": 2,
                "encoder_ffn_dim": 10240, "encoder_attention_heads": 32, "decoder_layers": 24,
                "decoder_ffn_dim": 10240, "decoder_attention_heads": 32, "d_model": 2560,
                "decoder_start_token_id": 1, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
                "encoder_no_repeat_ngram_size": 3, "forced_eos_token_id": 2}

"""PegasusConfig: BART's keys with Pegasus's defaults; pre-norm layers with final layer norms, sinusoidal positions."""

from __future__ import annotations

from flaxformers.models.bart.configuration import SHARED_DEFAULTS, Architecture, BartConfig


class PegasusConfig(BartConfig):
    model_type = "pegasus"
    architecture = Architecture(pre_norm=True, final_layer_norm=True, layernorm_embedding=False,
                                sinusoidal_positions=True)
    defaults = {**SHARED_DEFAULTS, "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1,
                "forced_eos_token_id": 1}

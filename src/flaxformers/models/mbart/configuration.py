"""MBartConfig: BART's keys; pre-norm layers with final layer norms and the embedding norm."""

from __future__ import annotations

from flaxformers.models.bart.configuration import SHARED_DEFAULTS, Architecture, BartConfig


class MBartConfig(BartConfig):
    model_type = "mbart"
    architecture = Architecture(pre_norm=True, final_layer_norm=True, position_offset=2)
    # no decoder_start_token_id: the decoder starts from the target language code (shift_tokens_right)
    defaults = {**SHARED_DEFAULTS, "classifier_dropout": 0.0, "pad_token_id": 1, "bos_token_id": 0,
                "eos_token_id": 2, "forced_eos_token_id": 2}

"""Marian: the BART-like transformer with sinusoidal positions (post-norm, no embedding norm)."""

from __future__ import annotations

from flaxformers.models.bart.modeling import (
    FlaxBartForConditionalGeneration,
    FlaxBartModel,
    FlaxBartPreTrainedModel,
)
from flaxformers.models.marian.configuration import MarianConfig


class FlaxMarianPreTrainedModel(FlaxBartPreTrainedModel):
    config_class = MarianConfig
    # PyTorch checkpoints may store the fixed sinusoidal tables
    _keys_to_ignore_on_load_unexpected = FlaxBartPreTrainedModel._keys_to_ignore_on_load_unexpected + (
        r"(^|\.)(encoder|decoder)\.embed_positions\.weight$",)
    _tied_weights_keys = {"lm_head.weight": "model.decoder.embed_tokens.weight"}


class FlaxMarianModel(FlaxMarianPreTrainedModel, FlaxBartModel):
    pass


class FlaxMarianMTModel(FlaxMarianPreTrainedModel, FlaxBartForConditionalGeneration):
    pass

"""Pegasus: the BART-like transformer, pre-norm with final layer norms and sinusoidal positions."""

from __future__ import annotations

from flaxformers.models.bart.modeling import (
    FlaxBartForConditionalGeneration,
    FlaxBartModel,
    FlaxBartPreTrainedModel,
)
from flaxformers.models.pegasus.configuration import PegasusConfig


class FlaxPegasusPreTrainedModel(FlaxBartPreTrainedModel):
    config_class = PegasusConfig
    # PyTorch checkpoints may store the fixed sinusoidal tables
    _keys_to_ignore_on_load_unexpected = FlaxBartPreTrainedModel._keys_to_ignore_on_load_unexpected + (
        r"(^|\.)(encoder|decoder)\.embed_positions\.weight$",)


class FlaxPegasusModel(FlaxPegasusPreTrainedModel, FlaxBartModel):
    pass


class FlaxPegasusForConditionalGeneration(FlaxPegasusPreTrainedModel, FlaxBartForConditionalGeneration):
    pass

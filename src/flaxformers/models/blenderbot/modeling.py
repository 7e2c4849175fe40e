"""Blenderbot: the BART-like transformer, pre-norm with final layer norms."""

from __future__ import annotations

from flaxformers.models.bart.modeling import (
    FlaxBartForConditionalGeneration,
    FlaxBartModel,
    FlaxBartPreTrainedModel,
)
from flaxformers.models.blenderbot.configuration import BlenderbotConfig


class FlaxBlenderbotPreTrainedModel(FlaxBartPreTrainedModel):
    config_class = BlenderbotConfig


class FlaxBlenderbotModel(FlaxBlenderbotPreTrainedModel, FlaxBartModel):
    pass


class FlaxBlenderbotForConditionalGeneration(FlaxBlenderbotPreTrainedModel, FlaxBartForConditionalGeneration):
    pass

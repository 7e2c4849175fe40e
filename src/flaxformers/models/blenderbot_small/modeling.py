"""BlenderbotSmall: the BART-like transformer, post-norm, its decoder normalising token embeddings first."""

from __future__ import annotations

from flaxformers.models.bart.modeling import (
    FlaxBartForConditionalGeneration,
    FlaxBartModel,
    FlaxBartPreTrainedModel,
)
from flaxformers.models.blenderbot_small.configuration import BlenderbotSmallConfig


class FlaxBlenderbotSmallPreTrainedModel(FlaxBartPreTrainedModel):
    config_class = BlenderbotSmallConfig


class FlaxBlenderbotSmallModel(FlaxBlenderbotSmallPreTrainedModel, FlaxBartModel):
    pass


class FlaxBlenderbotSmallForConditionalGeneration(FlaxBlenderbotSmallPreTrainedModel,
                                                  FlaxBartForConditionalGeneration):
    pass

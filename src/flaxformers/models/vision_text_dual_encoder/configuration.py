"""VisionTextDualEncoderConfig: any vision tower and any text tower of this library, and the projection."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig, nested_config


def _tower_config(value: Any, name: str) -> PretrainedConfig:
    """A tower's config from its dict (by its `model_type`); a joint CLIP config gives its vision tower."""
    config = nested_config(value, name)
    return getattr(config, "vision_config", config)


class VisionTextDualEncoderConfig(PretrainedConfig):
    model_type = "vision-text-dual-encoder"

    def __init__(self, projection_dim: int = 512, logit_scale_init_value: float = 2.6592, **kwargs: Any):
        if "vision_config" not in kwargs or "text_config" not in kwargs:
            raise ValueError("VisionTextDualEncoderConfig needs vision_config and text_config.")
        self.vision_config = _tower_config(kwargs.pop("vision_config"), "vision_config")
        self.text_config = _tower_config(kwargs.pop("text_config"), "text_config")
        self.projection_dim = projection_dim
        self.logit_scale_init_value = logit_scale_init_value
        super().__init__(**kwargs)

    @classmethod
    def from_vision_text_configs(cls, vision_config: PretrainedConfig, text_config: PretrainedConfig,
                                 **kwargs: Any) -> VisionTextDualEncoderConfig:
        return cls(vision_config=vision_config.to_dict(), text_config=text_config.to_dict(), **kwargs)

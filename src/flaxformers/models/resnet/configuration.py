"""ResNetConfig: the keys of transformers' ResNet `config.json` (backbone keys are kept as given)."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class ResNetConfig(PretrainedConfig):
    model_type = "resnet"

    def __init__(
        self,
        num_channels: int = 3,
        embedding_size: int = 64,
        hidden_sizes: list[int] | None = None,
        depths: list[int] | None = None,
        layer_type: str = "bottleneck",
        hidden_act: str = "relu",
        downsample_in_first_stage: bool = False,
        downsample_in_bottleneck: bool = False,
        **kwargs: Any,
    ):
        self.num_channels = num_channels
        self.embedding_size = embedding_size
        self.hidden_sizes = list(hidden_sizes) if hidden_sizes is not None else [256, 512, 1024, 2048]
        self.depths = list(depths) if depths is not None else [3, 4, 6, 3]
        self.layer_type = layer_type
        self.hidden_act = hidden_act
        self.downsample_in_first_stage = downsample_in_first_stage
        self.downsample_in_bottleneck = downsample_in_bottleneck
        super().__init__(**kwargs)
        self._check_positive_ints("num_channels", "embedding_size")
        self._check(len(self.hidden_sizes) == len(self.depths) > 0,
                    f"hidden_sizes={self.hidden_sizes} and depths={self.depths} must be non-empty lists of one entry "
                    "per stage.")
        self._check(layer_type in ("basic", "bottleneck"), f"layer_type={layer_type!r} must be 'basic' or 'bottleneck'.")
        self._check_activation("hidden_act", hidden_act)

"""RegNetConfig: the keys of transformers' RegNet `config.json`."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class RegNetConfig(PretrainedConfig):
    model_type = "regnet"

    def __init__(
        self,
        num_channels: int = 3,
        embedding_size: int = 32,
        hidden_sizes: list[int] | None = None,
        depths: list[int] | None = None,
        groups_width: int = 64,
        layer_type: str = "y",
        hidden_act: str = "relu",
        downsample_in_first_stage: bool = True,
        **kwargs: Any,
    ):
        self.num_channels = num_channels
        self.embedding_size = embedding_size
        self.hidden_sizes = list(hidden_sizes) if hidden_sizes is not None else [128, 192, 512, 1088]
        self.depths = list(depths) if depths is not None else [2, 6, 12, 2]
        self.groups_width = groups_width
        self.layer_type = layer_type
        self.hidden_act = hidden_act
        self.downsample_in_first_stage = downsample_in_first_stage
        super().__init__(**kwargs)
        self._check_positive_ints("num_channels", "embedding_size", "groups_width")
        self._check(len(self.hidden_sizes) == len(self.depths) > 0,
                    f"hidden_sizes={self.hidden_sizes} and depths={self.depths} must be non-empty lists of one entry "
                    "per stage.")
        self._check(layer_type in ("x", "y"), f"layer_type={layer_type!r} must be 'x' or 'y'.")
        self._check_activation("hidden_act", hidden_act)

"""BeitConfig: the keys of transformers' BEiT `config.json` (the image-model ones; segmentation keys are
kept as given)."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class BeitConfig(PretrainedConfig):
    model_type = "beit"

    def __init__(
        self,
        vocab_size: int = 8192,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.0,
        attention_probs_dropout_prob: float = 0.0,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        image_size: int = 224,
        patch_size: int = 16,
        num_channels: int = 3,
        use_mask_token: bool = False,
        use_absolute_position_embeddings: bool = False,
        use_relative_position_bias: bool = False,
        use_shared_relative_position_bias: bool = False,
        layer_scale_init_value: float = 0.1,
        drop_path_rate: float = 0.1,
        use_mean_pooling: bool = True,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.use_mask_token = use_mask_token
        self.use_absolute_position_embeddings = use_absolute_position_embeddings
        self.use_relative_position_bias = use_relative_position_bias
        self.use_shared_relative_position_bias = use_shared_relative_position_bias
        self.layer_scale_init_value = layer_scale_init_value
        self.drop_path_rate = drop_path_rate
        self.use_mean_pooling = use_mean_pooling
        super().__init__(**kwargs)
        self._check_positive_ints("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                  "intermediate_size", "image_size", "patch_size", "num_channels")
        self._check_heads()
        self._check_activation("hidden_act", hidden_act)
        self._check(0.0 <= drop_path_rate < 1.0, f"drop_path_rate={drop_path_rate!r} must be in [0, 1).")

    @property
    def window_size(self) -> tuple[int, int]:
        """The patch grid, over which relative positions are measured."""
        return (self.image_size // self.patch_size,) * 2

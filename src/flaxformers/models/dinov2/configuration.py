"""Dinov2Config: the keys of transformers' DINOv2 `config.json` (backbone keys are kept as given)."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class Dinov2Config(PretrainedConfig):
    model_type = "dinov2"

    def __init__(
        self,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        mlp_ratio: float = 4,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.0,
        attention_probs_dropout_prob: float = 0.0,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-6,
        image_size: int = 224,
        patch_size: int = 14,
        num_channels: int = 3,
        qkv_bias: bool = True,
        layerscale_value: float = 1.0,
        drop_path_rate: float = 0.0,
        use_swiglu_ffn: bool = False,
        use_mask_token: bool = True,
        **kwargs: Any,
    ):
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.mlp_ratio = mlp_ratio
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.qkv_bias = qkv_bias
        self.layerscale_value = layerscale_value
        self.drop_path_rate = drop_path_rate
        self.use_swiglu_ffn = use_swiglu_ffn
        self.use_mask_token = use_mask_token
        super().__init__(**kwargs)
        self._check_positive_ints("hidden_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size",
                                  "num_channels")
        self._check_heads()
        self._check(mlp_ratio > 0, f"mlp_ratio={mlp_ratio!r} must be > 0.")
        self._check_activation("hidden_act", hidden_act)
        self._check(0.0 <= drop_path_rate < 1.0, f"drop_path_rate={drop_path_rate!r} must be in [0, 1).")

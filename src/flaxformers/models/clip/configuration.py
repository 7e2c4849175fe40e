"""CLIP's configs: the text tower, the vision tower, and the joint model that nests both."""

from __future__ import annotations

from typing import Any, ClassVar

from flaxformers.configuration_utils import PretrainedConfig


class _TowerConfig(PretrainedConfig):
    """A tower's config also reads a whole CLIP `config.json`, taking its `text_config` / `vision_config`."""

    tower_key: ClassVar[str]

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **overrides: Any) -> PretrainedConfig:
        if config_dict.get("model_type") == CLIPConfig.model_type:
            config_dict = {k: v for k, v in (config_dict.get(cls.tower_key) or {}).items() if k != "model_type"}
        return super().from_dict(config_dict, **overrides)

    def _check_tower(self) -> None:
        self._check_positive_ints("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                  "projection_dim")
        self._check_heads()
        self._check_activation("hidden_act", self.hidden_act)
        self._check(0.0 <= self.attention_dropout < 1.0, f"attention_dropout={self.attention_dropout!r} must be in [0, 1).")


class CLIPTextConfig(_TowerConfig):
    model_type = "clip_text_model"
    tower_key = "text_config"

    def __init__(
        self,
        vocab_size: int = 49408,
        hidden_size: int = 512,
        intermediate_size: int = 2048,
        projection_dim: int = 512,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 8,
        max_position_embeddings: int = 77,
        hidden_act: str = "quick_gelu",
        layer_norm_eps: float = 1e-5,
        attention_dropout: float = 0.0,
        initializer_range: float = 0.02,
        initializer_factor: float = 1.0,
        pad_token_id: int = 1,
        bos_token_id: int = 49406,
        eos_token_id: int = 49407,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.projection_dim = projection_dim
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.max_position_embeddings = max_position_embeddings
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
        self._check_positive_ints("vocab_size", "max_position_embeddings")
        self._check_tower()


class CLIPVisionConfig(_TowerConfig):
    model_type = "clip_vision_model"
    tower_key = "vision_config"

    def __init__(
        self,
        hidden_size: int = 768,
        intermediate_size: int = 3072,
        projection_dim: int = 512,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        num_channels: int = 3,
        image_size: int = 224,
        patch_size: int = 32,
        hidden_act: str = "quick_gelu",
        layer_norm_eps: float = 1e-5,
        attention_dropout: float = 0.0,
        initializer_range: float = 0.02,
        initializer_factor: float = 1.0,
        **kwargs: Any,
    ):
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.projection_dim = projection_dim
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_channels = num_channels
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        super().__init__(**kwargs)
        self._check_positive_ints("num_channels", "image_size", "patch_size")
        self._check_tower()


class CLIPConfig(PretrainedConfig):
    """The joint model: `text_config` and `vision_config` (dicts or configs) and the shared projection."""

    model_type = "clip"

    def __init__(
        self,
        text_config: dict[str, Any] | CLIPTextConfig | None = None,
        vision_config: dict[str, Any] | CLIPVisionConfig | None = None,
        projection_dim: int = 512,
        logit_scale_init_value: float = 2.6592,
        **kwargs: Any,
    ):
        # transformers 4.x also wrote the towers as `text_config_dict` / `vision_config_dict`
        text_config = {**(kwargs.pop("text_config_dict", None) or {}), **_as_dict(text_config)}
        vision_config = {**(kwargs.pop("vision_config_dict", None) or {}), **_as_dict(vision_config)}
        self.text_config = CLIPTextConfig(**{k: v for k, v in text_config.items() if k != "model_type"})
        self.vision_config = CLIPVisionConfig(**{k: v for k, v in vision_config.items() if k != "model_type"})
        self.projection_dim = projection_dim
        self.logit_scale_init_value = logit_scale_init_value
        super().__init__(**kwargs)
        self._check_positive_ints("projection_dim")

    @classmethod
    def from_text_vision_configs(cls, text_config: CLIPTextConfig, vision_config: CLIPVisionConfig,
                                 **kwargs: Any) -> CLIPConfig:
        return cls(text_config=text_config.to_dict(), vision_config=vision_config.to_dict(), **kwargs)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, PretrainedConfig):
        return value.to_dict()
    return dict(value or {})

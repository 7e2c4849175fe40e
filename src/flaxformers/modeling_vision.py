"""The model class of image models: `pixel_values` in transformers' [B, C, H, W] layout.

Flax convolutions read channels last, so `__call__` checks the layout and transposes once, as
transformers 4.x Flax did. `init` traces one image of the config's size.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.configuration_utils import PretrainedConfig
from flaxformers.modeling_utils import FlaxPreTrainedModel

DEFAULT_IMAGE_SIZE = 224  # the input_shape of configs without image_size (4.x Flax ResNet, RegNet)


class FlaxPixelModel(FlaxPreTrainedModel):
    main_input_name = "pixel_values"

    @staticmethod
    def default_input_shape(config: PretrainedConfig) -> tuple[int, ...]:
        size = getattr(config, "image_size", DEFAULT_IMAGE_SIZE)
        return (1, size, size, getattr(config, "num_channels", 3))

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, jax.Array]:
        return {"pixel_values": jnp.zeros(input_shape, jnp.float32)}

    @property
    def _image_config(self) -> PretrainedConfig:
        """The config images are checked against (a text-and-image model: its vision tower's)."""
        return self.config

    def _pixel_values(self, pixel_values: Any) -> jax.Array:
        """[B, C, H, W] -> [B, H, W, C] float32, with a clear error for other layouts."""
        shape = tuple(np.shape(pixel_values))
        channels = getattr(self._image_config, "num_channels", 3)
        if len(shape) != 4 or shape[1] != channels:
            raise ValueError(f"pixel_values has shape {shape}; expected [batch, num_channels={channels}, height, "
                             "width], as an image processor returns them.")
        return jnp.transpose(jnp.asarray(pixel_values, jnp.float32), (0, 2, 3, 1))

    def __call__(
        self,
        pixel_values: Any,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        return self._apply(
            {"pixel_values": self._pixel_values(pixel_values)}, params=params, past_key_values=None,
            dropout_rng=dropout_rng, train=train, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


class FlaxBatchNormPixelModel(FlaxPixelModel):
    """Image models with batch norm and no attention (ResNet, RegNet): `params` is `{"params": ...,
    "batch_stats": ...}`, and `train=True` returns `(outputs, {"batch_stats": updated})`."""

    _state_collections = ("batch_stats",)

    def __call__(
        self,
        pixel_values: Any,
        params: dict | None = None,
        train: bool = False,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        return self._apply(
            {"pixel_values": self._pixel_values(pixel_values)}, params=params, past_key_values=None, dropout_rng=None,
            train=train, output_attentions=None, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


__all__ = ["FlaxBatchNormPixelModel", "FlaxPixelModel"]

"""The vision encoder-decoder: an image encoder (the base model the registry declares for its
`model_type`) and a decoder with cross-attention (its causal-LM head), with transformers 4.57 Flax's
param tree: `encoder/...`, `decoder/...` and, when their widths differ, `enc_to_dec_proj`.

The composite machinery (decode, cache, checkpoints, building from two checkpoints) is
`flaxformers.modeling_seq2seq`'s; this file says what an image source is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from flaxformers.configuration_utils import PretrainedConfig
from flaxformers.modeling_seq2seq import CompositeEncoderDecoderModel, CompositeEncoderDecoderModule
from flaxformers.modeling_vision import FlaxPixelModel
from flaxformers.models.vision_encoder_decoder.configuration import VisionEncoderDecoderConfig


class FlaxVisionEncoderDecoderModule(CompositeEncoderDecoderModule):
    config: VisionEncoderDecoderConfig

    @staticmethod
    def encoder_class(config: PretrainedConfig) -> type:
        """The base image model of `config.model_type`."""
        from flaxformers.auto import model_class_for

        cls = model_class_for(config.model_type, "base")
        if not issubclass(cls, FlaxPixelModel) or cls._state_collections:
            raise ValueError(f"encoder model_type={config.model_type!r} cannot encode images here: the encoder "
                             "is an image transformer of this library (ViT, BEiT, DINOv2, CLIP's vision tower).")
        return cls


class FlaxVisionEncoderDecoderModel(CompositeEncoderDecoderModel, FlaxPixelModel):
    """transformers 4.57's FlaxVisionEncoderDecoderModel: `encode(pixel_values)`, `decode(decoder_input_ids,
    encoder_outputs, ...)`, `init_cache(batch_size, max_length, encoder_outputs)`, the whole model, and
    `generate(pixel_values, ...)` through the one generation engine."""

    config_class = VisionEncoderDecoderConfig
    module_class = FlaxVisionEncoderDecoderModule
    base_model_prefix = "vision_encoder_decoder"

    @staticmethod
    def default_input_shape(config):
        return FlaxPixelModel.default_input_shape(config.encoder), (1, 1)

    def dummy_inputs(self, input_shape):
        image_shape, text_shape = input_shape
        return {"pixel_values": jnp.zeros(image_shape, jnp.float32), **self._dummy_decoder_inputs(text_shape)}

    @property
    def _image_config(self):
        return self.config.encoder

    def encoder_inputs_for_generation(self, pixel_values: Any) -> dict[str, jax.Array]:
        """What the engine's prefill gives the module's `encode`: `pixel_values` [B, H, W, C]."""
        return {"pixel_values": self._pixel_values(pixel_values)}

    # --- transformers 4.57's API -----------------------------------------------------------------
    def encode(self, pixel_values: Any, output_attentions: bool | None = None, output_hidden_states: bool | None = None,
               return_dict: bool | None = None, train: bool = False, params: dict | None = None,
               dropout_rng: jax.Array | None = None):
        """The encoder's outputs for `pixel_values` [B, C, H, W]: `last_hidden_state` [B, S, D]."""
        return self._apply(
            {"pixel_values": self._pixel_values(pixel_values)}, params=params, past_key_values=None,
            dropout_rng=dropout_rng, train=train, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict, method="encode",
        )

    def decode(self, decoder_input_ids: Any, encoder_outputs: Any, decoder_attention_mask: Any = None,
               decoder_position_ids: Any = None, past_key_values: dict | None = None,
               output_attentions: bool | None = None, output_hidden_states: bool | None = None,
               return_dict: bool | None = None, train: bool = False, params: dict | None = None,
               dropout_rng: jax.Array | None = None):
        """The decoder over `encoder_outputs` (what `encode` returned; every image position attended); with
        `past_key_values` (from `init_cache` or the previous step) it continues from the cache and returns
        the updated one."""
        return super().decode(decoder_input_ids, encoder_outputs, None, decoder_attention_mask, decoder_position_ids,
                              past_key_values, output_attentions, output_hidden_states, return_dict, train, params,
                              dropout_rng)

    def __call__(self, pixel_values: Any, decoder_input_ids: Any = None, decoder_attention_mask: Any = None,
                 decoder_position_ids: Any = None, output_attentions: bool | None = None,
                 output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
                 params: dict | None = None, dropout_rng: jax.Array | None = None):
        if decoder_input_ids is None:
            raise ValueError("`decoder_input_ids` can't be `None`: pass the decoder's tokens (for training, the "
                             "labels shifted right after decoder_start_token_id).")
        inputs = {"pixel_values": self._pixel_values(pixel_values),
                  **self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids)}
        return self._apply(
            inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


__all__ = ["FlaxVisionEncoderDecoderModel", "FlaxVisionEncoderDecoderModule"]

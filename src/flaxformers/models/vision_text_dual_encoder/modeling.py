"""The vision-text dual encoder: any vision tower and any text tower of this library under one projection,
with transformers 4.x Flax's param names (`vision_model`, `text_model`, the projections, `logit_scale`).

The towers are the base models the registry declares for their `model_type`; the joint output, the
features and the contrastive loss are CLIP's (`models.clip.modeling`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_utils import call_with_accepted
from flaxformers.models.clip.modeling import FlaxDualEncoderModel, _projection, joint_outputs
from flaxformers.models.vision_text_dual_encoder.configuration import VisionTextDualEncoderConfig


def _tower_module(config: Any, dtype: jnp.dtype) -> nn.Module:
    from flaxformers.auto import model_class_for

    return model_class_for(config.model_type, "base").module_class(config, dtype=dtype)


class FlaxVisionTextDualEncoderModule(nn.Module):
    config: VisionTextDualEncoderConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        cfg = self.config
        self.vision_model = _tower_module(cfg.vision_config, self.dtype)
        self.text_model = _tower_module(cfg.text_config, self.dtype)
        self.visual_projection = _projection(cfg.projection_dim, self.dtype, None)
        self.text_projection = _projection(cfg.projection_dim, self.dtype, None)
        self.logit_scale = self.param("logit_scale", lambda _, shape: jnp.full(shape, cfg.logit_scale_init_value), ())

    def text_features(self, input_ids, attention_mask, position_ids, token_type_ids=None, deterministic: bool = True):
        outputs = call_with_accepted(self.text_model, input_ids=input_ids, attention_mask=attention_mask,
                             position_ids=position_ids, token_type_ids=token_type_ids, deterministic=deterministic)
        return self.text_projection(outputs[1])

    def image_features(self, pixel_values, deterministic: bool = True):
        return self.visual_projection(self.vision_model(pixel_values, deterministic=deterministic)[1])

    def __call__(self, input_ids, pixel_values, attention_mask, position_ids, token_type_ids=None,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True, return_loss: bool = False):
        flags = dict(deterministic=deterministic, output_attentions=output_attentions,
                     output_hidden_states=output_hidden_states, return_dict=return_dict)
        vision = self.vision_model(pixel_values, **flags)
        text = call_with_accepted(self.text_model, input_ids=input_ids, attention_mask=attention_mask,
                          position_ids=position_ids, token_type_ids=token_type_ids, **flags)
        return joint_outputs(self, text, vision, return_dict, return_loss)


class FlaxVisionTextDualEncoderModel(FlaxDualEncoderModel):
    config_class = VisionTextDualEncoderConfig
    module_class = FlaxVisionTextDualEncoderModule

    def __call__(self, input_ids: Any, pixel_values: Any, attention_mask: Any = None, position_ids: Any = None,
                 token_type_ids: Any = None, params: dict | None = None, dropout_rng: jax.Array | None = None,
                 train: bool = False, output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                 return_dict: bool | None = None, return_loss: bool = False):
        inputs = {**self._token_inputs(input_ids, attention_mask, position_ids),
                  "pixel_values": self._pixel_values(pixel_values), "return_loss": return_loss,
                  "token_type_ids": jnp.zeros(jnp.shape(input_ids), "i4") if token_type_ids is None
                  else jnp.asarray(token_type_ids, "i4")}
        return self._apply(inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=return_dict)


__all__ = ["FlaxVisionTextDualEncoderModel"]

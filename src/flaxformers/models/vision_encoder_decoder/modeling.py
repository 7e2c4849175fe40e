"""The vision encoder-decoder: an image encoder (the base model the registry declares for its
`model_type`) and a decoder with cross-attention (its causal-LM head), with transformers 4.57 Flax's
param tree: `encoder/...`, `decoder/...` and, when their widths differ, `enc_to_dec_proj`.

The module's `encode(pixel_values)` and `decode(decoder_input_ids, ..., encoder_hidden_states)` are
what `encode`, `decode`, `init_cache` and generation call; the encoder states are projected into the
decoder's width at each `decode`, as 4.57 did.
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core.frozen_dict import unfreeze

from flaxformers.checkpoints.convert import ConversionRules, nested_rules
from flaxformers.modeling_utils import call_with_accepted
from flaxformers.modeling_vision import FlaxPixelModel
from flaxformers.models.vision_encoder_decoder.configuration import VisionEncoderDecoderConfig
from flaxformers.outputs import FlaxSeq2SeqLMOutput


def encoder_class(config: VisionEncoderDecoderConfig) -> type:
    """The encoder's model class: the base image model of `config.encoder.model_type`."""
    from flaxformers.auto import model_class_for

    cls = model_class_for(config.encoder.model_type, "base")
    if not issubclass(cls, FlaxPixelModel) or cls._state_collections:
        raise ValueError(f"encoder model_type={config.encoder.model_type!r} cannot encode images here: the encoder "
                         "is an image transformer of this library (ViT, BEiT, DINOv2, CLIP's vision tower).")
    return cls


def decoder_class(config: VisionEncoderDecoderConfig) -> type:
    """The decoder's model class: the causal-LM head of `config.decoder.model_type`, with cross-attention."""
    from flaxformers.auto import model_class_for

    if not config.decoder.add_cross_attention:
        raise ValueError("config.decoder.add_cross_attention is False: the decoder needs cross-attention over the "
                         "image. Build the config with VisionEncoderDecoderConfig.from_encoder_decoder_configs.")
    return model_class_for(config.decoder.model_type, "causal-lm")


def needs_projection(config: VisionEncoderDecoderConfig) -> bool:
    return (config.encoder.hidden_size != config.decoder.hidden_size
            and config.decoder.cross_attention_hidden_size is None)


def projection(config: VisionEncoderDecoderConfig, dtype: jnp.dtype = jnp.float32) -> nn.Dense:
    """`enc_to_dec_proj`: the encoder's states into the decoder's width."""
    return nn.Dense(config.decoder.hidden_size, dtype=dtype,
                    kernel_init=nn.initializers.normal(config.decoder.initializer_range))


class FlaxVisionEncoderDecoderModule(nn.Module):
    config: VisionEncoderDecoderConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        cfg = self.config
        self.encoder = encoder_class(cfg).module_class(cfg.encoder, dtype=self.dtype)
        self.decoder = decoder_class(cfg).module_class(cfg.decoder, dtype=self.dtype)
        self.enc_to_dec_proj = projection(cfg, self.dtype) if needs_projection(cfg) else None

    def encode(self, pixel_values, deterministic: bool = True, output_attentions: bool = False,
               output_hidden_states: bool = False, return_dict: bool = True):
        """The encoder's outputs for `pixel_values` [B, H, W, C]; `last_hidden_state` [B, S, D_enc]."""
        return call_with_accepted(self.encoder, pixel_values=pixel_values, deterministic=deterministic,
                                  output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                                  return_dict=return_dict)

    def decode(self, decoder_input_ids, decoder_attention_mask, decoder_position_ids, encoder_hidden_states,
               encoder_attention_mask=None, init_cache: bool = False, deterministic: bool = True,
               output_attentions: bool = False, output_hidden_states: bool = False, return_dict: bool = True):
        """The decoder's logits [B, T, V] over the (projected) encoder states [B, S, D_enc]."""
        if self.enc_to_dec_proj is not None:
            encoder_hidden_states = self.enc_to_dec_proj(encoder_hidden_states)  # [B, S, D_dec]
        if encoder_attention_mask is None:  # every image position is attended
            encoder_attention_mask = jnp.ones(encoder_hidden_states.shape[:2], "i4")
        return self.decoder(
            input_ids=decoder_input_ids, attention_mask=decoder_attention_mask, position_ids=decoder_position_ids,
            encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
            init_cache=init_cache, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict,
        )

    def __call__(self, pixel_values, decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True):
        flags = dict(deterministic=deterministic, output_attentions=output_attentions,
                     output_hidden_states=output_hidden_states, return_dict=return_dict)
        encoder_outputs = self.encode(pixel_values, **flags)
        decoder_outputs = self.decode(decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                                      encoder_outputs[0], **flags)
        if not return_dict:
            return decoder_outputs + encoder_outputs
        return FlaxSeq2SeqLMOutput(
            logits=decoder_outputs.logits, decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions, cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states, encoder_attentions=encoder_outputs.attentions,
        )


def _positions(shape: tuple[int, ...]) -> jax.Array:
    return jnp.broadcast_to(jnp.arange(shape[-1], dtype="i4")[None, :], shape)


class FlaxVisionEncoderDecoderModel(FlaxPixelModel):
    """transformers 4.57's FlaxVisionEncoderDecoderModel: `encode(pixel_values)`, `decode(decoder_input_ids,
    encoder_outputs, ...)`, `init_cache(batch_size, max_length, encoder_outputs)`, the whole model, and
    `generate(pixel_values, ...)` through the one generation engine."""

    config_class = VisionEncoderDecoderConfig
    module_class = FlaxVisionEncoderDecoderModule
    base_model_prefix = "vision_encoder_decoder"
    is_seq2seq_lm = True  # generate(pixel_values): the engine's encoder-decoder path

    def __init__(self, config: VisionEncoderDecoderConfig, input_shape: tuple | None = None, seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, **kwargs: Any):
        cross = config.decoder.cross_attention_hidden_size
        if cross is not None and cross != config.encoder.hidden_size:
            raise ValueError(f"config.decoder.cross_attention_hidden_size={cross} must equal the encoder's hidden_size="
                             f"{config.encoder.hidden_size} (or be None, for a projection into the decoder's width).")
        encoder_class(config), decoder_class(config)  # clear errors before tracing
        super().__init__(config, input_shape, seed, dtype, _do_init, **kwargs)

    @staticmethod
    def default_input_shape(config):
        return FlaxPixelModel.default_input_shape(config.encoder), (1, 1)

    def dummy_inputs(self, input_shape):
        image_shape, text_shape = input_shape
        ids = jnp.zeros(text_shape, "i4")
        return {"pixel_values": jnp.zeros(image_shape, jnp.float32), "decoder_input_ids": ids,
                "decoder_attention_mask": ids + 1, "decoder_position_ids": _positions(text_shape)}

    @property
    def _image_config(self):
        return self.config.encoder

    @property
    def _token_config(self):
        return self.config.decoder

    @classmethod
    def _conversion_rules(cls, config: VisionEncoderDecoderConfig) -> ConversionRules:
        return nested_rules(cls.base_model_prefix, {
            "encoder": encoder_class(config)._conversion_rules(config.encoder),
            "decoder": decoder_class(config)._conversion_rules(config.decoder),
        })

    # --- inputs ----------------------------------------------------------------------------------
    def _decoder_inputs(self, decoder_input_ids: Any, decoder_attention_mask: Any = None,
                        decoder_position_ids: Any = None, past_key_values: Any = None) -> dict[str, jax.Array]:
        inputs = self._token_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids, past_key_values)
        return {f"decoder_{k}": v for k, v in inputs.items()}

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
        """The decoder over `encoder_outputs` (what `encode` returned); with `past_key_values` (from
        `init_cache` or the previous step) it continues from the cache and returns the updated one."""
        inputs = {**self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                                         past_key_values),
                  "encoder_hidden_states": encoder_outputs[0]}
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
            method="decode",
        )

    def init_cache(self, batch_size: int, max_length: int, encoder_outputs: Any) -> dict:
        """A zeroed decoder cache for `max_length` positions, in 4.57's layout; `encoder_outputs` gives
        the image's sequence length."""
        states = encoder_outputs[0]
        inputs = {**self._decoder_inputs(jnp.ones((batch_size, max_length), "i4")),
                  "encoder_hidden_states": jnp.zeros((batch_size, *jnp.shape(states)[1:]), jnp.result_type(states))}

        def init(rng):
            return self.module.init(rng, **inputs, init_cache=True, return_dict=False, method="decode")["cache"]

        shapes = jax.eval_shape(init, jax.random.PRNGKey(0))
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), unfreeze(shapes))

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

    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_pretrained_model_name_or_path: str | os.PathLike | None = None,
                                        decoder_pretrained_model_name_or_path: str | os.PathLike | None = None,
                                        **kwargs: Any) -> FlaxVisionEncoderDecoderModel:
        """An encoder and a decoder from their own checkpoints (the decoder's cross-attention, and
        `enc_to_dec_proj` when the widths differ, start at random). `encoder_`/`decoder_`-prefixed keywords
        go to that part (`decoder_model=` a loaded one)."""
        from flaxformers.auto import AutoConfig, FlaxAutoModel, FlaxAutoModelForCausalLM

        parts = {}
        for part, path, auto in (("encoder", encoder_pretrained_model_name_or_path, FlaxAutoModel),
                                 ("decoder", decoder_pretrained_model_name_or_path, FlaxAutoModelForCausalLM)):
            options = {k.removeprefix(part + "_"): kwargs.pop(k) for k in list(kwargs) if k.startswith(part + "_")}
            model = options.pop("model", None)
            if model is None:
                if path is None:
                    raise ValueError(f"Pass {part}_pretrained_model_name_or_path (or {part}_model=).")
                if "config" not in options:
                    options["config"] = AutoConfig.from_pretrained(path)
                    options["config"].is_decoder = options["config"].add_cross_attention = part == "decoder"
                # what the checkpoint lacks (the decoder's cross-attention) that part initialises, as 4.57 did
                model = auto.from_pretrained(path, **options)
            parts[part] = model
        dtype = kwargs.pop("dtype", jnp.float32)
        config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(parts["encoder"].config,
                                                                         parts["decoder"].config, **kwargs)
        model = cls(config, dtype=dtype, _do_init=False)  # no random init of the parts that were loaded
        params = {part: loaded.params for part, loaded in parts.items()}
        if needs_projection(config):
            width = jnp.zeros((1, config.encoder.hidden_size), dtype)
            params["enc_to_dec_proj"] = unfreeze(projection(config, dtype).init(model.key, width))["params"]
        model._is_initialized = True
        model.params = params
        return model


__all__ = ["FlaxVisionEncoderDecoderModel", "FlaxVisionEncoderDecoderModule"]

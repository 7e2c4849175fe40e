"""The encoder-decoder model contract of transformers 4.57's Flax classes, written once.

Families subclass `Seq2SeqPreTrainedModel`. Their Linen modules provide three methods with these
keyword names, which `encode`, `decode`, `init_cache` and the generation engine call:

  * `encode(input_ids, attention_mask, position_ids=None, ...)` -> encoder outputs;
  * `decode(decoder_input_ids, decoder_attention_mask, decoder_position_ids, encoder_hidden_states,
    encoder_attention_mask, init_cache=False, ...)` -> decoder outputs, or logits for heads that
    predict tokens. With `init_cache=True` the decoder creates its self-attention cache and stores
    the cross-attention keys and values of the encoder states (`nn.attention.encoder_key_value`);
  * `__call__(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, position_ids,
    decoder_position_ids, ...)`: the whole model.

Families without absolute positions (`takes_position_ids = False`) accept and ignore the position ids.

`CompositeEncoderDecoderModel` is the same contract for a model made of two models of this library (an
image or audio encoder into a text decoder with cross-attention), with transformers 4.57 Flax's param tree:
`encoder/...`, `decoder/...` and, when their widths differ, `enc_to_dec_proj`.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core.frozen_dict import unfreeze

from flaxformers.checkpoints.convert import ConversionRules, flatten, nested_rules, unflatten
from flaxformers.configuration_utils import CompositeEncoderDecoderConfig, PretrainedConfig
from flaxformers.modeling_utils import FlaxPreTrainedModel, call_with_accepted
from flaxformers.nn.attention import CROSS_CACHE_NAMES
from flaxformers.outputs import FlaxSeq2SeqLMOutput


def shift_tokens_right(labels: Any, pad_token_id: int | None, decoder_start_token_id: int | None) -> jax.Array:
    """Decoder inputs for `labels` [B, T]: `decoder_start_token_id`, then the labels but the last, with
    the loss's -100 read as padding."""
    if decoder_start_token_id is None:
        raise ValueError("config.decoder_start_token_id is not set: set it to the token the decoder starts from.")
    if pad_token_id is None:
        raise ValueError("config.pad_token_id is not set: it replaces the -100 labels in the decoder inputs.")
    labels = jnp.asarray(labels, dtype="i4")
    start = jnp.full((labels.shape[0], 1), decoder_start_token_id, dtype="i4")
    shifted = jnp.concatenate([start, labels[:, :-1]], axis=1)
    return jnp.where(shifted == -100, pad_token_id, shifted)


def zeroed_decoder_cache(module: Any, decode_inputs: dict[str, Any]) -> dict:
    """A zeroed decoder cache in 4.57's layout: what `decode(..., init_cache=True)` creates, less the
    cross-attention keys and values (4.57's `decode` projects them from the encoder outputs at each call;
    a zeroed copy would be read in their place)."""

    def init(rng):
        return module.init(rng, **decode_inputs, init_cache=True, return_dict=False, method="decode")["cache"]

    shapes = flatten(unfreeze(jax.eval_shape(init, jax.random.PRNGKey(0))))
    return unflatten({path: jnp.zeros(s.shape, s.dtype) for path, s in shapes.items()
                      if path[-1] not in CROSS_CACHE_NAMES})


def default_positions(shape: tuple[int, ...]) -> jax.Array:
    """Positions 0..T-1 for every row of `shape` [B, T], as transformers defaults them."""
    return jnp.broadcast_to(jnp.arange(shape[-1], dtype="i4")[None, :], shape)


class Seq2SeqPreTrainedModel(FlaxPreTrainedModel):
    """A Flax encoder-decoder: 4.57's `encode`, `decode`, `init_cache(batch_size, max_length,
    encoder_outputs)` and `__call__`; heads with `is_seq2seq_lm = True` also `generate`."""

    takes_position_ids: ClassVar[bool] = True  # learned or sinusoidal absolute positions
    is_seq2seq_lm: ClassVar[bool] = False
    # decoder_input_ids default to the shifted input_ids (BART); False: they must be given (T5)
    shifts_input_ids: ClassVar[bool] = True

    @classmethod
    def can_generate(cls) -> bool:
        return cls.is_seq2seq_lm

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, jax.Array]:
        ids = jnp.zeros(input_shape, dtype="i4")
        return {**self._encoder_inputs(ids), **self._decoder_inputs(ids)}

    # --- inputs, with 4.57's defaults ------------------------------------------------------------
    def _encoder_inputs(self, input_ids: Any, attention_mask: Any = None, position_ids: Any = None) -> dict:
        shape = jnp.shape(input_ids)
        inputs = {"input_ids": jnp.asarray(input_ids, dtype="i4"),
                  "attention_mask": self._attention_mask(shape, attention_mask, None)}
        if self.takes_position_ids:
            inputs["position_ids"] = default_positions(shape) if position_ids is None else jnp.asarray(position_ids, "i4")
        self._check_input_ids(input_ids, inputs.get("position_ids"))
        return inputs

    def _decoder_inputs(self, decoder_input_ids: Any, decoder_attention_mask: Any = None,
                        decoder_position_ids: Any = None, past_key_values: Any = None) -> dict:
        shape = jnp.shape(decoder_input_ids)
        inputs = {"decoder_input_ids": jnp.asarray(decoder_input_ids, dtype="i4"),
                  "decoder_attention_mask": self._attention_mask(shape, decoder_attention_mask, past_key_values)}
        if self.takes_position_ids:
            if decoder_position_ids is None:
                if past_key_values is not None:
                    raise ValueError("Make sure to provide `decoder_position_ids` when passing `past_key_values`.")
                decoder_position_ids = default_positions(shape)
            inputs["decoder_position_ids"] = jnp.asarray(decoder_position_ids, dtype="i4")
        self._check_input_ids(decoder_input_ids, inputs.get("decoder_position_ids"))
        return inputs

    @staticmethod
    def _encoder_states(encoder_outputs: Any, encoder_attention_mask: Any) -> dict:
        if encoder_outputs is None:
            raise ValueError("decode() needs encoder_outputs: pass what model.encode(...) returned.")
        states = encoder_outputs[0]
        if encoder_attention_mask is None:
            encoder_attention_mask = jnp.ones(jnp.shape(states)[:2], dtype="i4")
        if tuple(jnp.shape(encoder_attention_mask)) != tuple(jnp.shape(states)[:2]):
            raise ValueError(f"encoder_attention_mask has shape {tuple(jnp.shape(encoder_attention_mask))}, but the "
                             f"encoder states are {tuple(jnp.shape(states)[:2])} [batch, source length]; pass the "
                             "attention_mask that went into encode().")
        return {"encoder_hidden_states": states, "encoder_attention_mask": jnp.asarray(encoder_attention_mask, "i4")}

    def prepare_decoder_input_ids_from_labels(self, labels: Any) -> jax.Array:
        """The decoder inputs transformers builds from `labels` (teacher forcing)."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    # --- transformers 4.57's API -----------------------------------------------------------------
    def init_cache(self, batch_size: int, max_length: int, encoder_outputs: Any) -> dict:
        """A zeroed decoder self-attention cache for `max_length` positions, in 4.57's layout.

        `encoder_outputs` (what `encode` returned) gives the source length. The cross-attention keys
        are not in it: `decode` projects them from `encoder_outputs` at each call, as 4.57 did.
        """
        states = encoder_outputs[0]
        inputs = {**self._decoder_inputs(jnp.ones((batch_size, max_length), "i4")),
                  "encoder_hidden_states": jnp.zeros((batch_size, *jnp.shape(states)[1:]), jnp.result_type(states)),
                  "encoder_attention_mask": jnp.ones((batch_size, jnp.shape(states)[1]), "i4")}
        return zeroed_decoder_cache(self.module, inputs)

    def encode(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        position_ids: Any = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        train: bool = False,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
    ):
        """The encoder's outputs for `input_ids` [B, S]: `last_hidden_state` [B, S, D] (and hidden states,
        attentions)."""
        return self._apply(
            self._encoder_inputs(input_ids, attention_mask, position_ids), params=params, past_key_values=None,
            dropout_rng=dropout_rng, train=train, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict, method="encode",
        )

    def decode(
        self,
        decoder_input_ids: Any,
        encoder_outputs: Any,
        encoder_attention_mask: Any = None,
        decoder_attention_mask: Any = None,
        decoder_position_ids: Any = None,
        past_key_values: dict | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        train: bool = False,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
    ):
        """The decoder over `encoder_outputs`; with `past_key_values` (from `init_cache` or the previous
        step) it continues from the cache and returns the updated one."""
        inputs = {**self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                                         past_key_values),
                  **self._encoder_states(encoder_outputs, encoder_attention_mask)}
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
            method="decode",
        )

    def __call__(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        decoder_input_ids: Any = None,
        decoder_attention_mask: Any = None,
        position_ids: Any = None,
        decoder_position_ids: Any = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        train: bool = False,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
    ):
        if decoder_input_ids is None:
            if not self.shifts_input_ids:
                raise ValueError("Make sure to provide both `input_ids` and `decoder_input_ids`: "
                                 "`decoder_input_ids` is not passed here.")
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(input_ids)
        inputs = {**self._encoder_inputs(input_ids, attention_mask, position_ids),
                  **self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids)}
        self._check_inputs(inputs)
        return self._apply(
            inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )

    def _check_inputs(self, inputs: dict[str, jax.Array]) -> None:
        """Head-specific checks of concrete inputs (e.g. the eos tokens a classifier pools)."""


# --- composite encoder-decoders: an encoder of this library into a decoder with cross-attention -----------
def composite_decoder_class(config: CompositeEncoderDecoderConfig) -> type:
    """The decoder's model class: the causal-LM head of `config.decoder.model_type`, with cross-attention."""
    from flaxformers.auto import model_class_for

    if not config.decoder.add_cross_attention:
        raise ValueError(f"config.decoder.add_cross_attention is False: the decoder needs cross-attention over the "
                         f"encoder's states. Build the config with {type(config).__name__}.from_encoder_decoder_configs.")
    return model_class_for(config.decoder.model_type, "causal-lm")


def encoder_output_width(config: CompositeEncoderDecoderConfig) -> int:
    """The width of the encoder's states (an encoder with an adapter: its `output_hidden_size`)."""
    return getattr(config.encoder, "output_hidden_size", None) or config.encoder.hidden_size


def needs_projection(config: CompositeEncoderDecoderConfig) -> bool:
    return encoder_output_width(config) != config.decoder.hidden_size and config.decoder.cross_attention_hidden_size is None


def projection(config: CompositeEncoderDecoderConfig, dtype: jnp.dtype = jnp.float32) -> nn.Dense:
    """`enc_to_dec_proj`: the encoder's states into the decoder's width."""
    return nn.Dense(config.decoder.hidden_size, dtype=dtype,
                    kernel_init=nn.initializers.normal(config.decoder.initializer_range))


class CompositeEncoderDecoderModule(nn.Module):
    """`encoder` (the model class `encoder_class` picks for `config.encoder`), `decoder` (the causal-LM head
    of `config.decoder`'s model type) and `enc_to_dec_proj`. The encoder's inputs are keywords, by the
    encoder's own names (`pixel_values`; `input_values` and `attention_mask`)."""

    config: CompositeEncoderDecoderConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False  # both parts recompute their layers in the backward pass
    remat_policy: Any = None
    # Seq2SeqLMOutput.encoder_last_hidden_state: the states the decoder attends to (projected), or the encoder's
    reports_projected_states: ClassVar[bool] = False

    @staticmethod
    def encoder_class(config: PretrainedConfig) -> type:
        """The encoder's model class for its config; a clear error for an encoder this composite cannot use."""
        raise NotImplementedError

    def setup(self):
        cfg = self.config
        remat = dict(gradient_checkpointing=True, remat_policy=self.remat_policy) if self.gradient_checkpointing else {}
        self.encoder = self.encoder_class(cfg.encoder).module_class(cfg.encoder, dtype=self.dtype, **remat)
        self.decoder = composite_decoder_class(cfg).module_class(cfg.decoder, dtype=self.dtype, **remat)
        self.enc_to_dec_proj = projection(cfg, self.dtype) if needs_projection(cfg) else None

    def states_mask(self, encoder_attention_mask: jax.Array, length: int) -> jax.Array:
        """The decoder's mask [B, S] over the encoder's `length` states, from the mask given with the source."""
        return encoder_attention_mask

    def encode(self, deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
               return_dict: bool = True, **encoder_inputs):
        """The encoder's outputs; `last_hidden_state` [B, S, D_enc]."""
        return call_with_accepted(self.encoder, **encoder_inputs, deterministic=deterministic,
                                  output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                                  return_dict=return_dict)

    def _project(self, encoder_hidden_states: jax.Array) -> jax.Array:
        if self.enc_to_dec_proj is None:
            return encoder_hidden_states
        return self.enc_to_dec_proj(encoder_hidden_states)  # [B, S, D_dec]

    def _decode_projected(self, decoder_input_ids, decoder_attention_mask, decoder_position_ids, states,
                          encoder_attention_mask, init_cache=False, **flags):
        if encoder_attention_mask is None:  # every state is attended
            mask = jnp.ones(states.shape[:2], "i4")
        else:
            mask = self.states_mask(encoder_attention_mask, states.shape[1])
        return self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                            position_ids=decoder_position_ids, encoder_hidden_states=states,
                            encoder_attention_mask=mask, init_cache=init_cache, **flags)

    def decode(self, decoder_input_ids, decoder_attention_mask, decoder_position_ids, encoder_hidden_states,
               encoder_attention_mask=None, init_cache: bool = False, deterministic: bool = True,
               output_attentions: bool = False, output_hidden_states: bool = False, return_dict: bool = True):
        """The decoder's logits [B, T, V] over the encoder states [B, S, D_enc], projected into its width."""
        return self._decode_projected(
            decoder_input_ids, decoder_attention_mask, decoder_position_ids, self._project(encoder_hidden_states),
            encoder_attention_mask, init_cache, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict)

    def __call__(self, decoder_input_ids, decoder_attention_mask, decoder_position_ids, deterministic: bool = True,
                 output_attentions: bool = False, output_hidden_states: bool = False, return_dict: bool = True,
                 **encoder_inputs):
        flags = dict(deterministic=deterministic, output_attentions=output_attentions,
                     output_hidden_states=output_hidden_states, return_dict=return_dict)
        encoder_outputs = self.encode(**encoder_inputs, **flags)
        states = self._project(encoder_outputs[0])
        decoder_outputs = self._decode_projected(decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                                                 states, encoder_inputs.get("attention_mask"), **flags)
        if not return_dict:
            return decoder_outputs + encoder_outputs
        return FlaxSeq2SeqLMOutput(
            logits=decoder_outputs.logits, decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions, cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=states if self.reports_projected_states else encoder_outputs[0],
            encoder_hidden_states=encoder_outputs.hidden_states, encoder_attentions=encoder_outputs.attentions,
        )


class CompositeEncoderDecoderModel(FlaxPreTrainedModel):
    """What transformers 4.57's FlaxVisionEncoderDecoderModel and FlaxSpeechEncoderDecoderModel share:
    `decode`, `init_cache(batch_size, max_length, encoder_outputs)`, checkpoint names (each part's, under
    `encoder.` and `decoder.`), `from_encoder_decoder_pretrained`, and `generate` through the one engine.
    Subclasses give `encode`, `__call__`, `dummy_inputs` and `encoder_inputs_for_generation` for their
    encoder's inputs."""

    config_class: ClassVar[type[CompositeEncoderDecoderConfig]]
    module_class: ClassVar[type[CompositeEncoderDecoderModule]]
    is_seq2seq_lm = True  # generate(source): the engine's encoder-decoder path

    def __init__(self, config: CompositeEncoderDecoderConfig, input_shape: tuple | None = None, seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, **kwargs: Any):
        cross = config.decoder.cross_attention_hidden_size
        if cross is not None and cross != config.encoder.hidden_size:
            raise ValueError(f"config.decoder.cross_attention_hidden_size={cross} must equal the encoder's hidden_size="
                             f"{config.encoder.hidden_size} (or be None, for a projection into the decoder's width).")
        self.module_class.encoder_class(config.encoder), composite_decoder_class(config)  # clear errors first
        super().__init__(config, input_shape, seed, dtype, _do_init, **kwargs)

    @property
    def _token_config(self):
        return self.config.decoder

    @classmethod
    def _conversion_rules(cls, config: CompositeEncoderDecoderConfig) -> ConversionRules:
        return nested_rules(cls.base_model_prefix, {
            "encoder": cls.module_class.encoder_class(config.encoder)._conversion_rules(config.encoder),
            "decoder": composite_decoder_class(config)._conversion_rules(config.decoder),
        })

    @staticmethod
    def _dummy_decoder_inputs(shape: tuple[int, ...]) -> dict[str, jax.Array]:
        ids = jnp.zeros(shape, "i4")
        return {"decoder_input_ids": ids, "decoder_attention_mask": ids + 1, "decoder_position_ids": default_positions(shape)}

    def prepare_decoder_input_ids_from_labels(self, labels: Any) -> jax.Array:
        """The decoder inputs transformers builds from `labels` (teacher forcing), by the composite's config."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _decoder_inputs(self, decoder_input_ids: Any, decoder_attention_mask: Any = None,
                        decoder_position_ids: Any = None, past_key_values: Any = None) -> dict[str, jax.Array]:
        inputs = self._token_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids, past_key_values)
        return {f"decoder_{k}": v for k, v in inputs.items()}

    def decode(self, decoder_input_ids: Any, encoder_outputs: Any, encoder_attention_mask: Any = None,
               decoder_attention_mask: Any = None, decoder_position_ids: Any = None,
               past_key_values: dict | None = None, output_attentions: bool | None = None,
               output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
               params: dict | None = None, dropout_rng: jax.Array | None = None):
        """The decoder over `encoder_outputs` (what `encode` returned); with `past_key_values` (from
        `init_cache` or the previous step) it continues from the cache and returns the updated one."""
        inputs = {**self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                                         past_key_values),
                  "encoder_hidden_states": encoder_outputs[0],
                  "encoder_attention_mask": None if encoder_attention_mask is None
                  else jnp.asarray(encoder_attention_mask, "i4")}
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
            method="decode",
        )

    def init_cache(self, batch_size: int, max_length: int, encoder_outputs: Any) -> dict:
        """A zeroed decoder cache for `max_length` positions, in 4.57's layout; `encoder_outputs` gives
        the source's length."""
        states = encoder_outputs[0]
        inputs = {**self._decoder_inputs(jnp.ones((batch_size, max_length), "i4")),
                  "encoder_hidden_states": jnp.zeros((batch_size, *jnp.shape(states)[1:]), jnp.result_type(states))}
        return zeroed_decoder_cache(self.module, inputs)

    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_pretrained_model_name_or_path: str | os.PathLike | None = None,
                                        decoder_pretrained_model_name_or_path: str | os.PathLike | None = None,
                                        **kwargs: Any) -> CompositeEncoderDecoderModel:
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
        config = cls.config_class.from_encoder_decoder_configs(parts["encoder"].config, parts["decoder"].config,
                                                               **kwargs)
        model = cls(config, dtype=dtype, _do_init=False)  # no random init of the parts that were loaded
        params = {part: loaded.params for part, loaded in parts.items()}
        if needs_projection(config):
            width = jnp.zeros((1, encoder_output_width(config)), dtype)
            params["enc_to_dec_proj"] = unfreeze(projection(config, dtype).init(model.key, width))["params"]
        model._is_initialized = True
        model.params = params
        return model


__all__ = ["CompositeEncoderDecoderModel", "CompositeEncoderDecoderModule", "Seq2SeqPreTrainedModel",
           "shift_tokens_right"]

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
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax.core.frozen_dict import unfreeze

from flaxformers.checkpoints.convert import flatten, unflatten
from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.nn.attention import CROSS_CACHE_NAMES


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


def _positions(shape: tuple[int, ...]) -> jax.Array:
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
            inputs["position_ids"] = _positions(shape) if position_ids is None else jnp.asarray(position_ids, "i4")
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
                decoder_position_ids = _positions(shape)
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

        def init(rng):
            return self.module.init(rng, **inputs, init_cache=True, return_dict=False, method="decode")["cache"]

        shapes = flatten(unfreeze(jax.eval_shape(init, jax.random.PRNGKey(0))))
        return unflatten({path: jnp.zeros(s.shape, s.dtype) for path, s in shapes.items()
                          if path[-1] not in CROSS_CACHE_NAMES})

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


__all__ = ["Seq2SeqPreTrainedModel", "shift_tokens_right"]

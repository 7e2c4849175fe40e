"""The encoder-decoder: a text encoder (the base model the registry declares for its `model_type`) and a
decoder with cross-attention (its causal-LM head), with transformers 4.57 Flax's param tree:
`encoder/...`, `decoder/...` and, when their widths differ, `enc_to_dec_proj`.

The composite machinery (decode, cache, checkpoints, building from two checkpoints) is
`flaxformers.modeling_seq2seq`'s; this file says what a text source is: token ids, their padding mask
(which the decoder's cross-attention also reads) and positions.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from flaxformers.configuration_utils import PretrainedConfig
from flaxformers.modeling_seq2seq import (
    CompositeEncoderDecoderModel,
    CompositeEncoderDecoderModule,
    default_positions,
)
from flaxformers.models.encoder_decoder.configuration import EncoderDecoderConfig


class FlaxEncoderDecoderModule(CompositeEncoderDecoderModule):
    config: EncoderDecoderConfig

    @staticmethod
    def encoder_class(config: PretrainedConfig) -> type:
        """The base text model of `config.model_type`."""
        from flaxformers.auto import model_class_for

        cls = model_class_for(config.model_type, "base")
        if cls.main_input_name != "input_ids" or getattr(cls, "is_seq2seq_lm", False):
            raise ValueError(f"encoder model_type={config.model_type!r} cannot encode text here: the encoder is a "
                             "text encoder of this library (BERT, RoBERTa, ELECTRA, GPT-2, ...).")
        return cls


class FlaxEncoderDecoderModel(CompositeEncoderDecoderModel):
    """transformers 4.57's FlaxEncoderDecoderModel: `encode(input_ids, attention_mask, position_ids)`,
    `decode(decoder_input_ids, encoder_outputs, encoder_attention_mask, ...)`, `init_cache(batch_size,
    max_length, encoder_outputs)`, the whole model, and `generate(input_ids, attention_mask=...)` through
    the one generation engine."""

    config_class = EncoderDecoderConfig
    module_class = FlaxEncoderDecoderModule
    base_model_prefix = "encoder_decoder"

    @staticmethod
    def default_input_shape(config):
        return (1, 1), (1, 1)

    def dummy_inputs(self, input_shape):
        source_shape, target_shape = input_shape
        return {**self._source_inputs(jnp.zeros(source_shape, "i4")),
                **self._decoder_inputs(jnp.zeros(target_shape, "i4"))}

    @property
    def _source_config(self) -> PretrainedConfig:
        return self.config.encoder

    def _source_inputs(self, input_ids: Any, attention_mask: Any = None, position_ids: Any = None) -> dict:
        """The encoder's inputs with 4.57's defaults (every token attended, positions from 0), checked
        against the encoder's vocabulary and positions."""
        shape = jnp.shape(input_ids)
        position_ids = default_positions(shape) if position_ids is None else jnp.asarray(position_ids, "i4")
        self._check_input_ids(input_ids, position_ids, self.config.encoder)
        return {"input_ids": jnp.asarray(input_ids, "i4"), "position_ids": position_ids,
                "attention_mask": self._attention_mask(shape, attention_mask, None)}

    # --- transformers 4.57's API -----------------------------------------------------------------
    def encode(self, input_ids: Any, attention_mask: Any = None, position_ids: Any = None,
               output_attentions: bool | None = None, output_hidden_states: bool | None = None,
               return_dict: bool | None = None, train: bool = False, params: dict | None = None,
               dropout_rng: jax.Array | None = None):
        """The encoder's outputs for `input_ids` [B, S]: `last_hidden_state` [B, S, D_enc]."""
        return self._apply(
            self._source_inputs(input_ids, attention_mask, position_ids), params=params, past_key_values=None,
            dropout_rng=dropout_rng, train=train, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict, method="encode",
        )

    def __call__(self, input_ids: Any, attention_mask: Any = None, decoder_input_ids: Any = None,
                 decoder_attention_mask: Any = None, position_ids: Any = None, decoder_position_ids: Any = None,
                 output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                 return_dict: bool | None = None, train: bool = False, params: dict | None = None,
                 dropout_rng: jax.Array | None = None):
        if decoder_input_ids is None:
            raise ValueError("`decoder_input_ids` can't be `None`: pass the decoder's tokens (for training, the "
                             "labels shifted right after decoder_start_token_id).")
        inputs = {**self._source_inputs(input_ids, attention_mask, position_ids),
                  **self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids)}
        return self._apply(
            inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


__all__ = ["FlaxEncoderDecoderModel", "FlaxEncoderDecoderModule"]

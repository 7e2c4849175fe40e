"""FlaxEncoderPreTrainedModel: the model-class contract of the BERT-like encoders, written once.

It checks and casts the inputs (ids, segment ids, positions, head mask, encoder states) and calls the
module; families subclass it with their config, `base_model_prefix` and module classes, and (where
transformers 4.57's signature differs from BERT's) a `__call__` that forwards to `_encoder_call`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.nn.embeddings import padding_position_ids
from flaxformers.nn.encoder import EncoderLayout


def _as_array(x: Any, dtype: str) -> jax.Array:
    return jnp.asarray(x, dtype=dtype)


class FlaxEncoderPreTrainedModel(FlaxPreTrainedModel):
    # Buffers of PyTorch checkpoints.
    _keys_to_ignore_on_load_unexpected = (r"position_ids$", r"token_type_ids$")
    _takes_encoder_states = False  # only the base model and the causal LM accept encoder_hidden_states
    uses_token_types: ClassVar[bool] = True

    @classmethod
    def layout(cls) -> EncoderLayout:
        """The base module's layout (a head module names its base module)."""
        base = getattr(cls.module_class, "base_module", cls.module_class)
        return getattr(base, "layout", EncoderLayout())

    def __init__(self, config: Any, input_shape: tuple[int, ...] = (1, 1), seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, gradient_checkpointing: bool = False,
                 **kwargs: Any):
        super().__init__(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=_do_init, **kwargs)
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()

    def dummy_inputs(self, input_shape):
        input_ids = jnp.zeros(input_shape, dtype="i4")
        inputs = {"input_ids": input_ids, "attention_mask": jnp.ones_like(input_ids),
                  "position_ids": jnp.broadcast_to(jnp.arange(input_shape[-1]), input_shape)}
        if self.uses_token_types:
            inputs["token_type_ids"] = jnp.zeros_like(input_ids)
        if self.config.add_cross_attention and self._takes_encoder_states:
            inputs["encoder_hidden_states"] = jnp.zeros((*input_shape, self.config.hidden_size), self.dtype)
            inputs["encoder_attention_mask"] = inputs["attention_mask"]
        return inputs

    def init_cache(self, batch_size: int, max_length: int) -> dict:
        if not self.config.is_decoder:
            raise ValueError("init_cache needs a decoder: set config.is_decoder=True (the encoder's self-attention is "
                             "bidirectional otherwise and keeps no cache).")
        return super().init_cache(batch_size, max_length)

    def _head_mask(self, head_mask: Any) -> jax.Array:
        """[N] (every layer) or [L, N] -> [L, N] floats, with a clear error for other shapes."""
        cfg = self.config
        head_mask = jnp.asarray(head_mask, dtype=self.dtype)
        if head_mask.ndim == 1:
            head_mask = jnp.broadcast_to(head_mask, (cfg.num_hidden_layers, head_mask.shape[0]))
        if head_mask.shape != (cfg.num_hidden_layers, cfg.num_attention_heads):
            raise ValueError(
                f"head_mask has shape {tuple(np.shape(head_mask))}; expected (num_hidden_layers, num_attention_heads)"
                f" = ({cfg.num_hidden_layers}, {cfg.num_attention_heads}) or (num_attention_heads,)."
            )
        return head_mask

    def _check_token_types(self, token_type_ids: Any) -> None:
        if isinstance(token_type_ids, jax.core.Tracer) or not np.size(token_type_ids):
            return
        top, size = int(np.max(token_type_ids)), self.config.type_vocab_size
        if top >= size or int(np.min(token_type_ids)) < 0:
            raise ValueError(f"token_type_ids holds {top}, outside [0, type_vocab_size={size}). Pass 0/1 segment ids, "
                             "or none.")

    def _encoder_call(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                      encoder_hidden_states=None, encoder_attention_mask=None, *, params=None, dropout_rng=None,
                      train=False, output_attentions=None, output_hidden_states=None, return_dict=None,
                      past_key_values=None, rngs: dict[str, jax.Array] | None = None, **module_inputs: Any):
        shape = jnp.shape(input_ids)
        if position_ids is None:
            if past_key_values is not None:
                raise ValueError("Make sure to provide `position_ids` when passing `past_key_values`.")
            if self.layout().padding_positions:  # fairseq's positions, from the ids
                position_ids = padding_position_ids(jnp.asarray(input_ids), self.config.pad_token_id)
            else:
                position_ids = jnp.broadcast_to(jnp.arange(shape[-1]), shape)
        self._check_input_ids(np.reshape(input_ids, (-1, shape[-1])) if len(shape) > 2 else input_ids,
                              position_ids)
        inputs = {
            "input_ids": _as_array(input_ids, "i4"),
            "attention_mask": self._attention_mask(shape, attention_mask, past_key_values),
            "position_ids": _as_array(position_ids, "i4"),
            **module_inputs,
        }
        if self.uses_token_types:
            if token_type_ids is None:
                token_type_ids = jnp.zeros(shape, dtype="i4")
            self._check_token_types(token_type_ids)
            inputs["token_type_ids"] = _as_array(token_type_ids, "i4")
        if head_mask is not None:
            inputs["head_mask"] = self._head_mask(head_mask)
        if encoder_hidden_states is not None:
            if not self._takes_encoder_states:
                raise ValueError(f"{type(self).__name__} takes no encoder_hidden_states; use the base model or the "
                                 "causal LM with config.add_cross_attention=True.")
            inputs["encoder_hidden_states"] = encoder_hidden_states
            inputs["encoder_attention_mask"] = (
                None if encoder_attention_mask is None else _as_array(encoder_attention_mask, "i4")
            )
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
            rngs=rngs,
        )

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: dict | None = None,
    ):
        return self._encoder_call(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, encoder_hidden_states,
            encoder_attention_mask, params=params, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
            past_key_values=past_key_values,
        )


__all__ = ["FlaxEncoderPreTrainedModel"]

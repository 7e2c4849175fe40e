"""The speech encoder-decoder: a raw-audio encoder (the base model of its `model_type`: Wav2Vec2, with or
without its adapter) and a decoder with cross-attention (its causal-LM head), with transformers 4.57
Flax's param tree: `encoder/...`, `decoder/...` and, when the widths differ, `enc_to_dec_proj`.

The composite machinery is `flaxformers.modeling_seq2seq`'s; this file says what an audio source is:
raw samples [B, samples] with a mask over them, which the decoder reads as a mask over the encoder's
frames.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.configuration_utils import PretrainedConfig
from flaxformers.modeling_seq2seq import CompositeEncoderDecoderModel, CompositeEncoderDecoderModule
from flaxformers.models.speech_encoder_decoder.configuration import SpeechEncoderDecoderConfig
from flaxformers.models.wav2vec2.modeling import conv_output_lengths, frame_mask
from flaxformers.outputs import FlaxBaseModelOutput


class FlaxSpeechEncoderDecoderModule(CompositeEncoderDecoderModule):
    config: SpeechEncoderDecoderConfig
    reports_projected_states = True  # transformers' encoder_last_hidden_state: what the decoder attends to

    @staticmethod
    def encoder_class(config: PretrainedConfig) -> type:
        """The base raw-audio model of `config.model_type`."""
        from flaxformers.auto import model_class_for

        cls = model_class_for(config.model_type, "base")
        if cls.main_input_name != "input_values":
            raise ValueError(f"encoder model_type={config.model_type!r} cannot encode raw audio here: the encoder is "
                             "a raw-audio model of this library (Wav2Vec2).")
        return cls

    def states_mask(self, encoder_attention_mask: jax.Array, length: int) -> jax.Array:
        """A mask over the frames [B, F] as it is; one over the source's samples [B, samples] (what `encode`
        took) as the mask over the encoder's `length` output frames."""
        if encoder_attention_mask.shape[1] == length:
            return encoder_attention_mask
        encoder = self.config.encoder
        return frame_mask(encoder, length, encoder_attention_mask, encoder.add_adapter)


class FlaxSpeechEncoderDecoderModel(CompositeEncoderDecoderModel):
    """transformers 4.57's FlaxSpeechEncoderDecoderModel: `encode(inputs, attention_mask)`,
    `decode(decoder_input_ids, encoder_outputs, encoder_attention_mask, ...)`, `init_cache(batch_size,
    max_length, encoder_outputs)`, the whole model, and `generate(inputs, attention_mask=...)` through the
    one generation engine."""

    config_class = SpeechEncoderDecoderConfig
    module_class = FlaxSpeechEncoderDecoderModule
    base_model_prefix = "speech_encoder_decoder"
    main_input_name = "inputs"

    @staticmethod
    def default_input_shape(config):
        return (1, 1024), (1, 1)

    def dummy_inputs(self, input_shape):
        audio_shape, text_shape = input_shape
        return {"input_values": jnp.zeros(audio_shape, jnp.float32), "attention_mask": jnp.ones(audio_shape, "i4"),
                **self._dummy_decoder_inputs(text_shape)}

    def _get_feat_extract_output_lengths(self, input_lengths: Any, add_adapter: bool | None = None) -> Any:
        """Encoder frames of `input_lengths` samples (4.57's name); `add_adapter` defaults to the encoder's."""
        encoder = self.config.encoder
        return conv_output_lengths(encoder, input_lengths, encoder.add_adapter if add_adapter is None else add_adapter)

    @staticmethod
    def _audio_inputs(inputs: Any, attention_mask: Any) -> dict[str, jax.Array]:
        """`input_values` [B, samples] float32 and its `attention_mask` (left out when None), checked."""
        shape = tuple(np.shape(inputs))
        if len(shape) != 2:
            raise ValueError(f"inputs has shape {shape}; expected raw audio [batch, samples], as "
                             "Wav2Vec2FeatureExtractor returns it (`input_values`).")
        audio = {"input_values": jnp.asarray(inputs, jnp.float32)}
        if attention_mask is not None:
            if tuple(np.shape(attention_mask)) != shape:
                raise ValueError(f"attention_mask has shape {tuple(np.shape(attention_mask))}; expected {shape}, "
                                 "one entry per sample of `inputs` (1 for audio, 0 for padding).")
            audio["attention_mask"] = jnp.asarray(attention_mask, "i4")
        return audio

    def encoder_inputs_for_generation(self, inputs: Any, attention_mask: Any = None) -> dict[str, jax.Array]:
        """What the engine's prefill gives the module's `encode`: the audio and its sample mask, which the
        decoder reads as the mask over the encoder's frames."""
        return self._audio_inputs(inputs, attention_mask)

    # --- transformers 4.57's API -----------------------------------------------------------------
    def encode(self, inputs: Any, attention_mask: Any = None, output_attentions: bool | None = None,
               output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
               freeze_feature_encoder: bool = False, params: dict | None = None,
               dropout_rng: jax.Array | None = None):
        """The encoder's outputs for raw audio `inputs` [B, samples]: `last_hidden_state` [B, F, D_enc] (the
        encoder's width; `decode` projects it). Pass the same `attention_mask` to `decode`."""
        outputs = self._apply(
            {**self._audio_inputs(inputs, attention_mask), "freeze_feature_encoder": freeze_feature_encoder},
            params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
            method="encode",
        )
        if not isinstance(outputs, tuple):  # 4.57's encoder output, without the feature encoder's features
            outputs = FlaxBaseModelOutput(last_hidden_state=outputs.last_hidden_state,
                                          hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return outputs

    def decode(self, decoder_input_ids: Any, encoder_outputs: Any, encoder_attention_mask: Any = None,
               decoder_attention_mask: Any = None, decoder_position_ids: Any = None,
               past_key_values: dict | None = None, output_attentions: bool | None = None,
               output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
               params: dict | None = None, dropout_rng: jax.Array | None = None):
        """The decoder over `encoder_outputs` (what `encode` returned). `encoder_attention_mask` masks the
        encoder's frames [B, F], or is the `attention_mask` [B, samples] given to `encode`. With
        `past_key_values` (from `init_cache` or the previous step) it continues from the cache and returns
        the updated one."""
        return super().decode(decoder_input_ids, encoder_outputs, encoder_attention_mask, decoder_attention_mask,
                              decoder_position_ids, past_key_values, output_attentions, output_hidden_states,
                              return_dict, train, params, dropout_rng)

    def __call__(self, inputs: Any, attention_mask: Any = None, decoder_input_ids: Any = None,
                 decoder_attention_mask: Any = None, decoder_position_ids: Any = None,
                 output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                 return_dict: bool | None = None, train: bool = False, freeze_feature_encoder: bool = False,
                 params: dict | None = None, dropout_rng: jax.Array | None = None):
        if decoder_input_ids is None:
            raise ValueError("`decoder_input_ids` can't be `None`: pass the decoder's tokens (for training, the "
                             "labels shifted right after decoder_start_token_id).")
        inputs = {**self._audio_inputs(inputs, attention_mask), "freeze_feature_encoder": freeze_feature_encoder,
                  **self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids)}
        return self._apply(
            inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


__all__ = ["FlaxSpeechEncoderDecoderModel", "FlaxSpeechEncoderDecoderModule"]

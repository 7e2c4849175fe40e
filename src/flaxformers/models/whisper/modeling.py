"""Whisper in Flax, with transformers 4.57 Flax's param names.

The encoder is a convolutional front-end over the log-mel spectrogram (`conv1`, `conv2` with stride 2)
plus a sinusoidal `embed_positions` table stored as a weight, then the BART-like pre-norm layers
(`models/bart`: the same `FlaxBartLayer`, whose k_proj has no bias here) and a final `layer_norm`. The
decoder is the BART-like decoder stack with its own `embed_tokens` and learned `embed_positions`. Param
paths: `model/encoder/conv1/kernel` [3, mel, D], `model/encoder/embed_positions/embedding`,
`model/encoder/layers/0/self_attn/q_proj/kernel`, `model/decoder/embed_tokens/embedding`, `lm_head/kernel`
(PyTorch's `proj_out`, present only when untied).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.generation.config import GenerationConfig
from flaxformers.modeling_seq2seq import Seq2SeqPreTrainedModel
from flaxformers.models.bart.modeling import (
    LN_EPS,
    FlaxBartForConditionalGenerationModule,
    FlaxBartLayer,
    FlaxBartModule,
    FlaxBartStack,
    _embed,
)
from flaxformers.models.whisper.configuration import WhisperConfig
from flaxformers.models.whisper.generation import (
    FlaxWhisperTimeStampLogitsProcessor,
    required_setting,
    whisper_prompt,
)
from flaxformers.nn.layers import layer_norm
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import (
    FlaxSequenceClassifierOutput,
    stack_output,
)


def whisper_sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
    """Whisper's fixed encoder positions [length, channels]: sines then cosines, geometric timescales."""
    increment = np.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = np.exp(-increment * np.arange(channels // 2))
    scaled = np.arange(length)[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


class FlaxWhisperEncoder(nn.Module):
    """conv1 -> GELU -> conv2 (stride 2) -> GELU, + positions, the layers, the final layer norm."""

    config: WhisperConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, input_features, output_attentions=False, output_hidden_states=False, return_dict=True,
                 deterministic=True):
        cfg = self.config
        frames = 2 * cfg.max_source_positions
        if input_features.shape[1:] != (cfg.num_mel_bins, frames):
            raise ValueError(f"input_features has shape {tuple(input_features.shape)}; expected [batch, "
                             f"num_mel_bins={cfg.num_mel_bins}, {frames}] (2 * max_source_positions frames). "
                             "Pad or truncate the audio features to that length (WhisperFeatureExtractor does).")
        conv = lambda stride, name: nn.Conv(cfg.d_model, (3,), strides=stride, padding=1, dtype=self.dtype,  # noqa: E731
                                            kernel_init=nn.initializers.normal(cfg.init_std), name=name)
        hidden = jnp.swapaxes(input_features, 1, 2).astype(self.dtype)  # [B, F, mel]
        hidden = jax.nn.gelu(conv(1, "conv1")(hidden), approximate=False)
        hidden = jax.nn.gelu(conv(2, "conv2")(hidden), approximate=False)  # [B, S, D]
        positions = nn.Embed(cfg.max_source_positions, cfg.d_model, dtype=self.dtype, name="embed_positions",
                             embedding_init=lambda *_: jnp.asarray(whisper_sinusoids(cfg.max_source_positions,
                                                                                     cfg.d_model)))
        hidden = hidden + jax.lax.stop_gradient(positions.embedding.astype(self.dtype))  # frozen, as in PyTorch
        hidden = nn.Dropout(cfg.dropout)(hidden, deterministic=deterministic)
        layers = LayerStack(FlaxBartLayer, cfg.encoder_layers, {"config": cfg, "dtype": self.dtype, "decoder": False},
                            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                            name="layers")
        hidden, all_hidden, attentions, _ = layers(hidden, (None, None, None), deterministic, False,
                                                   output_attentions, output_hidden_states)
        hidden = layer_norm(LN_EPS, self.dtype, "layer_norm")(hidden)
        return stack_output(hidden, all_hidden, attentions, output_hidden_states=output_hidden_states,
                            return_dict=return_dict)


class FlaxWhisperModule(FlaxBartModule):
    """The encoder-decoder; `decode` is the BART-like one (the decoder has its own token embedding)."""

    def setup(self):
        cfg = self.config
        common = dict(dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing,
                      remat_policy=self.remat_policy)
        self.encoder = FlaxWhisperEncoder(cfg, **common)
        self.decoder = FlaxBartStack(cfg, _embed(cfg, cfg.vocab_size, self.dtype), decoder=True, **common)

    def encode(self, input_features, attention_mask=None, position_ids=None, output_attentions=False,
               output_hidden_states=False, return_dict=True, deterministic=True):
        # Whisper does not mask the audio frames: `attention_mask` is accepted and ignored, as in transformers
        return self.encoder(input_features, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict,
                            deterministic=deterministic)

    def __call__(self, input_features, decoder_input_ids, decoder_attention_mask, decoder_position_ids=None,
                 attention_mask=None, position_ids=None, output_attentions=False, output_hidden_states=False,
                 return_dict=True, deterministic=True):
        return super().__call__(input_features, None, decoder_input_ids, decoder_attention_mask, None,
                                decoder_position_ids, output_attentions, output_hidden_states, return_dict,
                                deterministic)


class FlaxWhisperForConditionalGenerationModule(FlaxBartForConditionalGenerationModule):
    """BART's LM head over Whisper's encoder-decoder: tied to the decoder's own token embedding, no logits bias."""

    base_module = FlaxWhisperModule

    def output_embedding(self) -> jax.Array:
        return self.model.decoder.embed_tokens.embedding


class FlaxWhisperForAudioClassificationModule(nn.Module):
    """The encoder alone, a `projector`, mean pooling over frames and a `classifier`; with
    `use_weighted_layer_sum` a softmax-weighted sum of every hidden state (transformers' `layer_weights`)."""

    config: WhisperConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, input_features, attention_mask=None, output_attentions=False, output_hidden_states=False,
                 return_dict=True, deterministic=True):
        cfg = self.config
        weighted = cfg.use_weighted_layer_sum
        outputs = FlaxWhisperEncoder(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy,
                                     name="encoder")(input_features, output_attentions=output_attentions,
                                                     output_hidden_states=output_hidden_states or weighted,
                                                     return_dict=True, deterministic=deterministic)
        if weighted:
            layers = cfg.num_hidden_layers + 1
            weights = self.param("layer_weights", nn.initializers.constant(1.0 / layers), (layers,))
            stacked = jnp.stack(outputs.hidden_states, axis=1)  # [B, L, S, D]
            hidden = jnp.einsum("blsd,l->bsd", stacked, jax.nn.softmax(weights).astype(stacked.dtype))
        else:
            hidden = outputs.last_hidden_state
        hidden = nn.Dense(cfg.classifier_proj_size, dtype=self.dtype, name="projector")(hidden)
        logits = nn.Dense(cfg.num_labels, dtype=self.dtype, name="classifier")(jnp.mean(hidden, axis=1))  # [B, C]
        hidden_states = outputs.hidden_states if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (logits, hidden_states, outputs.attentions) if v is not None)
        return FlaxSequenceClassifierOutput(logits=logits, hidden_states=hidden_states, attentions=outputs.attentions)


# --- the model classes ---------------------------------------------------------------------------
class FlaxWhisperPreTrainedModel(Seq2SeqPreTrainedModel):
    config_class = WhisperConfig
    base_model_prefix = "model"
    main_input_name = "input_features"
    shifts_input_ids = False
    _tied_weights_keys = {"proj_out.weight": "model.decoder.embed_tokens.weight"}
    _checkpoint_renames = ((r"^lm_head\.", "proj_out."),)

    def __init__(self, config: WhisperConfig, input_shape: tuple[int, ...] | None = None, seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, gradient_checkpointing: bool = False,
                 **kwargs: Any):
        super().__init__(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=_do_init, **kwargs)
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()

    @staticmethod
    def default_input_shape(config: WhisperConfig) -> tuple[int, ...]:
        return (1, config.num_mel_bins, 2 * config.max_source_positions)

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, jax.Array]:
        return {"input_features": jnp.zeros(input_shape, jnp.float32),
                **self._decoder_inputs(jnp.zeros((input_shape[0], 1), "i4"))}

    def _encoder_inputs(self, input_features: Any, attention_mask: Any = None, position_ids: Any = None) -> dict:
        features = jnp.asarray(input_features, jnp.float32)
        if features.ndim != 3:
            raise ValueError(f"input_features must be [batch, num_mel_bins, frames], got shape {features.shape}; "
                             "make them with WhisperFeatureExtractor.")
        return {"input_features": features}

    def encoder_inputs_for_generation(self, input_features: Any) -> dict[str, jax.Array]:
        """What the engine's prefill gives the module's `encode`: `input_features` [B, mel, frames]."""
        return self._encoder_inputs(input_features)

    def encode(self, input_features: Any, attention_mask: Any = None, output_attentions: bool | None = None,
               output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
               params: dict | None = None, dropout_rng: jax.Array | None = None, **kwargs: Any):
        """The encoder's outputs for `input_features` [B, mel, 2 * max_source_positions]."""
        return super().encode(input_features, attention_mask, None, output_attentions, output_hidden_states,
                              return_dict, train, params, dropout_rng)

    def __call__(self, input_features: Any, decoder_input_ids: Any, attention_mask: Any = None,
                 decoder_attention_mask: Any = None, position_ids: Any = None, decoder_position_ids: Any = None,
                 output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                 return_dict: bool | None = None, train: bool = False, params: dict | None = None,
                 dropout_rng: jax.Array | None = None):
        if decoder_position_ids is None and decoder_attention_mask is not None:  # 4.57: positions skip padding
            mask = jnp.asarray(decoder_attention_mask, "i4")
            decoder_position_ids = jnp.cumsum(mask, axis=-1) * mask - 1
        return super().__call__(input_features, attention_mask, decoder_input_ids, decoder_attention_mask, None,
                                decoder_position_ids, output_attentions, output_hidden_states, return_dict, train,
                                params, dropout_rng)


class FlaxWhisperModel(FlaxWhisperPreTrainedModel):
    module_class = FlaxWhisperModule


class FlaxWhisperForConditionalGeneration(FlaxWhisperPreTrainedModel):
    module_class = FlaxWhisperForConditionalGenerationModule
    is_seq2seq_lm = True

    def detect_language(self, input_features: Any, generation_config: GenerationConfig | None = None,
                        params: dict | None = None) -> np.ndarray:
        """The most likely language token [B] after the start token (transformers' `detect_language`)."""
        config = generation_config or self.generation_config
        lang_ids = np.asarray(sorted(required_setting(config, "lang_to_id", "detect the language").values()))
        start = np.full((jnp.shape(input_features)[0], 1), config.decoder_start_token_id, np.int32)
        logits = np.asarray(self(input_features, decoder_input_ids=start, params=params).logits[:, -1])  # [B, V]
        return lang_ids[np.argmax(logits[:, lang_ids], axis=-1)]

    def generate(self, input_features: Any, generation_config: GenerationConfig | None = None,
                 logits_processor: Any = None, return_timestamps: bool | None = None, task: str | None = None,
                 language: str | list[str] | None = None, is_multilingual: bool | None = None,
                 params: dict | None = None, **kwargs: Any):
        """Transcribe or translate `input_features` [B, mel, frames] through the generation engine.

        The decoder starts from Whisper's prompt, as transformers 5 builds it: the start token, the
        language token (`language="fr"`, "french" or "<|fr|>"; detected when the model is multilingual and
        none is given), the task token (`task="transcribe"` or "translate") and `<|notimestamps|>`.
        4.57's `forced_decoder_ids` (indices 1, 2, ...) become that prompt too. `suppress_tokens` and
        `begin_suppress_tokens` apply as configured. With `return_timestamps=True` the prompt has no
        `<|notimestamps|>` and the timestamp rules apply (`FlaxWhisperTimeStampLogitsProcessor`); decode the
        sequences with `WhisperTokenizer.decode(..., output_offsets=True)`. Returns the prompt and the new tokens.
        """
        config = (generation_config or self.generation_config or GenerationConfig.from_model_config(self.config)).copy()
        for key, value in (("task", task), ("language", language), ("is_multilingual", is_multilingual),
                           ("return_timestamps", return_timestamps),
                           ("forced_decoder_ids", kwargs.pop("forced_decoder_ids", None))):
            if value is not None:
                setattr(config, key, value)
        settings = config.copy()
        settings.update(**kwargs)  # the prompt reads the settings this call will use
        features = self._encoder_inputs(input_features)["input_features"]
        prompt = whisper_prompt(settings, features.shape[0], lambda: self.detect_language(features, settings, params))
        config.forced_decoder_ids = None  # they are the prompt now
        processors = list(logits_processor or ())
        if getattr(settings, "return_timestamps", False):
            no_timestamps = required_setting(settings, "no_timestamps_token_id", "generate timestamps")
            eos = settings.eos_token_id if settings.eos_token_id is not None else settings.bos_token_id
            processors.insert(0, FlaxWhisperTimeStampLogitsProcessor(
                no_timestamps + 1, int(eos if isinstance(eos, int) else eos[0]), np.int32(prompt.shape[1]),
                getattr(settings, "max_initial_timestamp_index", None)))
        return super().generate(features, generation_config=config, params=params, decoder_input_ids=prompt,
                                logits_processor=processors, **kwargs)


class FlaxWhisperForAudioClassification(FlaxWhisperPreTrainedModel):
    module_class = FlaxWhisperForAudioClassificationModule

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, jax.Array]:
        return {"input_features": jnp.zeros(input_shape, jnp.float32)}

    def __call__(self, input_features: Any, attention_mask: Any = None, output_attentions: bool | None = None,
                 output_hidden_states: bool | None = None, return_dict: bool | None = None, train: bool = False,
                 params: dict | None = None, dropout_rng: jax.Array | None = None, **kwargs: Any):
        return self._apply(self._encoder_inputs(input_features), params=params, past_key_values=None,
                           dropout_rng=dropout_rng, train=train, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=return_dict)


__all__ = [
    "FlaxWhisperForAudioClassification",
    "FlaxWhisperForConditionalGeneration",
    "FlaxWhisperModel",
    "FlaxWhisperPreTrainedModel",
]

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
from flaxformers.generation.engine import apply_processors
from flaxformers.generation.mixin import GenerationRequest
from flaxformers.modeling_seq2seq import Seq2SeqPreTrainedModel
from flaxformers.models.bart.modeling import (
    LN_EPS,
    FlaxBartForConditionalGenerationModule,
    FlaxBartLayer,
    FlaxBartModule,
    FlaxBartStack,
    _embed,
)
from flaxformers.models.whisper import long_form
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
    decoder_prompt_is_complete = True  # previous text and prompts come before the start token
    input_stride = 2  # mel frames per encoder position (conv2's stride)

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
                 params: dict | None = None, attention_mask: Any = None, prompt_ids: Any = None,
                 prompt_condition_type: str | None = None, condition_on_prev_tokens: bool | None = None,
                 temperature: float | tuple[float, ...] | None = None, compression_ratio_threshold: float | None = None,
                 logprob_threshold: float | None = None, no_speech_threshold: float | None = None,
                 num_segment_frames: int | None = None, time_precision: float = 0.02,
                 time_precision_features: float = 0.01, return_segments: bool = False, **kwargs: Any):
        """Transcribe or translate `input_features` [B, mel, frames] through the generation engine.

        The decoder starts from Whisper's prompt, as transformers 5 builds it: the start token, the
        language token (`language="fr"`, "french" or "<|fr|>"; detected when the model is multilingual and
        none is given), the task token (`task="transcribe"` or "translate") and `<|notimestamps|>`.
        4.57's `forced_decoder_ids` (indices 1, 2, ...) become that prompt too. `suppress_tokens` and
        `begin_suppress_tokens` apply as configured.

        A 30 s window without timestamps is one engine call, as in 4.57: the prompt and the new tokens.
        Audio longer than 30 s (the feature extractor's `truncation=False, padding="longest",
        return_attention_mask=True`; a batch needs that `attention_mask`), `return_timestamps=True`, or any
        of transformers 5's long-form arguments (`temperature` (a tuple: fallback temperatures),
        `compression_ratio_threshold`, `logprob_threshold`, `no_speech_threshold`, `condition_on_prev_tokens`,
        `prompt_ids`, `prompt_condition_type`, `num_segment_frames`, `return_segments`) decode window after
        window as transformers 5 does (`long_form.transcribe`): `sequences` are the prompt and every
        segment's tokens end to end, `segments` (with `return_segments=True`) each row's
        `{"start", "end", "tokens"}` in seconds.
        """
        config = (generation_config or self.generation_config or GenerationConfig.from_model_config(self.config)).copy()
        for key, value in (("task", task), ("language", language), ("is_multilingual", is_multilingual),
                           ("return_timestamps", return_timestamps),
                           ("forced_decoder_ids", kwargs.pop("forced_decoder_ids", None))):
            if value is not None:
                setattr(config, key, value)
        features = self._encoder_inputs(input_features)["input_features"]
        window = num_segment_frames or self.input_stride * self.config.max_source_positions
        long_form_audio = features.shape[-1] > window
        if long_form_audio and return_timestamps is False:
            raise ValueError(f"input_features have {features.shape[-1]} frames, more than one {window}-frame window: "
                             "long-form generation predicts timestamps; pass return_timestamps=True (or None).")
        sequential = {"temperature": temperature, "compression_ratio_threshold": compression_ratio_threshold,
                      "logprob_threshold": logprob_threshold, "no_speech_threshold": no_speech_threshold,
                      "condition_on_prev_tokens": condition_on_prev_tokens, "prompt_ids": prompt_ids,
                      "prompt_condition_type": prompt_condition_type}
        if not (long_form_audio or getattr(config, "return_timestamps", False) or return_segments
                or any(v is not None for v in sequential.values())):
            return self._generate_window(features, config, logits_processor, params, kwargs)
        config.return_timestamps = bool(long_form_audio or getattr(config, "return_timestamps", False))
        streamer = kwargs.pop("streamer", None)
        unknown = config.update(**kwargs)
        if unknown:
            raise ValueError(f"generate() got unknown keyword arguments {sorted(unknown)}; expected GenerationConfig "
                             "keys (max_new_tokens, num_beams, ...) or Whisper's long-form arguments.")
        return self._generate_sequential(features, attention_mask, config, logits_processor, params, window,
                                         time_precision, time_precision_features, return_segments, streamer,
                                         **sequential)

    def _generate_window(self, features: jax.Array, config: GenerationConfig, logits_processor: Any,
                         params: dict | None, kwargs: dict[str, Any]):
        """One engine call on one 30 s window (4.57's generate). `decoder_input_ids` (with an optional
        left-padding `decoder_attention_mask`) replace Whisper's prompt, as in transformers 5."""
        prompt = kwargs.pop("decoder_input_ids", None)
        settings = config.copy()
        settings.update(**{k: v for k, v in kwargs.items() if k != "decoder_attention_mask"})
        if prompt is None:  # Whisper's prompt, from the settings this call will use
            prompt = whisper_prompt(settings, features.shape[0], lambda: self.detect_language(features, settings,
                                                                                               params))
        config.forced_decoder_ids = None  # they are the prompt now
        processors = self._timestamp_processors(settings, prompt.shape[1], logits_processor)
        return super().generate(features, generation_config=config, params=params, decoder_input_ids=prompt,
                                logits_processor=processors, **kwargs)

    @staticmethod
    def _timestamp_processors(config: GenerationConfig, prompt_len: int, logits_processor: Any) -> list:
        """The caller's processors, after the timestamp rules when timestamps are on."""
        processors = list(logits_processor or ())
        if getattr(config, "return_timestamps", False):
            no_timestamps = required_setting(config, "no_timestamps_token_id", "generate timestamps")
            eos = config.eos_token_id if config.eos_token_id is not None else config.bos_token_id
            processors.insert(0, FlaxWhisperTimeStampLogitsProcessor(
                no_timestamps + 1, int(eos if isinstance(eos, int) else eos[0]), np.int32(prompt_len),
                getattr(config, "max_initial_timestamp_index", None)))
        return processors

    def _generate_sequential(self, features: jax.Array, attention_mask: Any, config: GenerationConfig,
                             logits_processor: Any, params: dict | None, window: int, time_precision: float,
                             time_precision_features: float, return_segments: bool, streamer: Any,
                             **arguments: Any):
        """transformers 5's sequential decoding: window after window, with fallback and no-speech skipping.
        A `streamer` gets the prompt, then each segment's tokens once its window is decoded."""
        batch, frames = features.shape[0], features.shape[-1]
        if streamer is not None and batch != 1:
            raise ValueError(f"`streamer` streams one audio; got a batch of {batch}: generate them one at a time.")
        if batch > 1 and frames > window and attention_mask is None:
            raise ValueError("Batched long-form generation needs attention_mask [B, frames]: make the features with "
                             "the feature extractor's return_attention_mask=True.")
        max_frames = (np.asarray(attention_mask).sum(-1).astype(np.int64) if batch > 1 and frames > window
                      else np.full(batch, frames, np.int64))
        if (config.num_return_sequences or 1) > 1:
            raise NotImplementedError("num_return_sequences > 1 is not supported by long-form generation; use 1.")
        settings = self._long_form_settings(config, window, time_precision, time_precision_features, **arguments)
        first = features[:, :, :window]
        init = whisper_prompt(config, batch, lambda: self.detect_language(first, config, params))
        config.forced_decoder_ids = None  # they are the prompt now
        parent = super().generate

        def decode(inputs: np.ndarray, prompt: np.ndarray, mask: np.ndarray | None, cfg: GenerationConfig):
            processors = self._timestamp_processors(cfg, prompt.shape[1], logits_processor)
            out = parent(inputs, generation_config=cfg, params=params, decoder_input_ids=prompt,
                         decoder_attention_mask=mask, logits_processor=processors)
            new = np.asarray(out.sequences)[:, prompt.shape[1]:]
            if settings.logprob_threshold is None:
                return new, None, None
            start = prompt.shape[1] - init.shape[1]  # the start token's place in the prompt
            return new, *self._token_logprobs(inputs, prompt, mask, new, cfg, processors, params, start)
        eos = config.eos_token_id if config.eos_token_id is not None else []
        prev_sot = getattr(config, "prev_sot_token_id", None)
        suppress = config.suppress_tokens or []
        if prev_sot is None and len(suppress) >= 2:
            prev_sot = int(suppress[-2])  # transformers' guess for checkpoints without prev_sot_token_id
        on_segments = None
        if streamer is not None:
            streamer.put(init)
            on_segments = lambda _, found: [streamer.put(s["tokens"][None]) for s in found]  # noqa: E731
        segments = long_form.transcribe(np.asarray(features), max_frames, init, config, settings, decode, prev_sot, set(eos if isinstance(eos, list) else [eos]), on_segments)
        if streamer is not None:
            streamer.end()
        pad = config.pad_token_id if config.pad_token_id is not None else 0
        joined = long_form.join_segments(segments, pad)
        sequences = np.concatenate([init.astype(np.int64), joined], axis=1).astype(np.int32)
        return long_form.FlaxWhisperGenerateOutput(sequences=jnp.asarray(sequences),
                                                   segments=segments if return_segments else None)

    def _long_form_settings(self, config: GenerationConfig, window: int, time_precision: float,
                            time_precision_features: float, temperature: Any, compression_ratio_threshold: Any,
                            logprob_threshold: Any, no_speech_threshold: Any, condition_on_prev_tokens: Any,
                            prompt_ids: Any, prompt_condition_type: Any) -> long_form.LongFormSettings:
        """generate()'s arguments over the generation config's, as transformers 5 resolves them."""
        def setting(value: Any, key: str) -> Any:
            return value if value is not None else getattr(config, key, None)

        condition = bool(setting(condition_on_prev_tokens, "condition_on_prev_tokens"))
        condition_type = prompt_condition_type or "first-segment"
        if condition_type not in ("first-segment", "all-segments"):
            raise ValueError(f"prompt_condition_type={condition_type!r} is not supported; expected 'first-segment' "
                             "or 'all-segments'.")
        if condition_type == "all-segments" and not condition:
            raise ValueError("prompt_condition_type='all-segments' needs condition_on_prev_tokens=True.")
        temperatures = tuple(temperature) if isinstance(temperature, list | tuple) else (temperature,)
        prompt = None if prompt_ids is None else np.asarray(prompt_ids, np.int32).reshape(-1)
        segment = prompt  # transformers drops <|startofprev|> only when the config names it
        if prompt is not None and len(prompt) and prompt[0] == getattr(config, "prev_sot_token_id", None):
            segment = prompt[1:]
        return long_form.LongFormSettings(
            temperatures=temperatures,
            compression_ratio_threshold=setting(compression_ratio_threshold, "compression_ratio_threshold"),
            logprob_threshold=setting(logprob_threshold, "logprob_threshold"),
            no_speech_threshold=setting(no_speech_threshold, "no_speech_threshold"),
            condition_on_prev_tokens=condition,
            prompt_ids=prompt, prompt_segment=segment,
            prompt_condition_type=condition_type, num_segment_frames=window, input_stride=self.input_stride,
            time_precision=time_precision, time_precision_features=time_precision_features,
            timestamp_begin=required_setting(config, "no_timestamps_token_id", "generate timestamps") + 1,
            max_target_positions=self.config.max_target_positions, vocab_size=self.config.vocab_size)

    def _logits(self, params: dict | None, features: Any, decoder_input_ids: Any, mask: Any) -> jax.Array:
        """The decoder's logits [B, T, V] (one compiled forward per shape)."""
        forward = self.__dict__.get("_compiled_logits")
        if forward is None:
            forward = self.__dict__["_compiled_logits"] = jax.jit(lambda p, f, ids, m: self(
                f, decoder_input_ids=ids, decoder_attention_mask=m, params=p).logits)
        return forward(params if params is not None else self.params, features, decoder_input_ids, mask)

    def _token_logprobs(self, features: np.ndarray, prompt: np.ndarray, mask: np.ndarray | None, new: np.ndarray,
                        config: GenerationConfig, processors: list, params: dict | None, start: int
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Each new token's log-probability [B, N] under the scores it was chosen from (the logits after the
        processors, on the beam that made it: transformers' `scores`), and the `<|nospeech|>` probability
        [B] after the start token (at `start` in the prompt), from one teacher-forced forward."""
        request = GenerationRequest.build(self, features, None, config, False,
                                          {"decoder_input_ids": prompt, "decoder_attention_mask": mask,
                                           "logits_processor": processors})
        ids = np.concatenate([request.ids, new.astype(np.int32)], axis=1)  # [B, bucket + N]
        mask = np.concatenate([request.mask, np.ones_like(new, np.int32)], axis=1)
        logits = self._logits(params, request.encoder_inputs["input_features"], ids, mask)
        cur_len = request.ids.shape[1] + np.arange(new.shape[1], dtype=np.int32)  # where each new token goes
        no_speech = required_setting(config, "no_timestamps_token_id", "detect silence") - 1  # <|nospeech|>
        after_start = jax.nn.softmax(logits[:, request.offset + start], axis=-1)[:, no_speech]
        return np.asarray(_processed_logprobs(request.processors, ids, logits, cur_len)), np.asarray(after_start)


@jax.jit
def _processed_logprobs(processors: tuple, ids: jax.Array, logits: jax.Array, cur_len: jax.Array) -> jax.Array:
    """The log-probability [B, N] of the token at each of `cur_len` [N] under the processed logits before it."""
    def step(t, scores):  # scores [B, V]: the logits before position t
        return jax.nn.log_softmax(apply_processors(processors, ids, scores, t), axis=-1)

    logprobs = jax.vmap(step, in_axes=(0, 1), out_axes=1)(cur_len, logits[:, cur_len - 1])  # [B, N, V]
    return jnp.take_along_axis(logprobs, ids[:, cur_len][..., None], axis=-1)[..., 0]


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

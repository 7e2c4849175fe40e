"""`generate` for every causal LM and encoder-decoder: transformers 4.57's FlaxGenerationMixin API over
one compiled engine.

The host side here validates the call, resolves lengths and special tokens as transformers 5 does,
left-pads the (decoder) prompt to a length bucket, right-pads an encoder-decoder's source to its own
bucket, builds the logits processors in buffer coordinates and runs the compiled prefill + decode
loop of `flaxformers.generation.engine`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from flaxformers.generation import engine
from flaxformers.generation.config import GenerationConfig, budget, check_positions, token_ids
from flaxformers.generation.logits_process import (
    FlaxForcedBOSTokenLogitsProcessor,
    FlaxForcedEOSTokenLogitsProcessor,
    FlaxForceTokensLogitsProcessor,
    FlaxLogitsProcessor,
    FlaxMinLengthLogitsProcessor,
    FlaxNoRepeatNGramLogitsProcessor,
    FlaxRepetitionPenaltyLogitsProcessor,
    FlaxSuppressTokensAtBeginLogitsProcessor,
    FlaxSuppressTokensLogitsProcessor,
)
from flaxformers.outputs import output_class

logger = logging.getLogger("flaxformers")

FlaxGreedySearchOutput = output_class("FlaxGreedySearchOutput", "sequences")
FlaxSampleOutput = output_class("FlaxSampleOutput", "sequences")
FlaxBeamSearchOutput = output_class("FlaxBeamSearchOutput", "sequences", "scores")
for _cls in (FlaxGreedySearchOutput, FlaxSampleOutput, FlaxBeamSearchOutput):
    _cls.__module__ = __name__

# Prompt lengths are left-padded up to the next bucket, so prompts of similar length share one compile.
DEFAULT_PROMPT_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
# An encoder-decoder's decoder prompt is its start token: its buckets start at one.
DECODER_PROMPT_BUCKETS = (1, 4, 16, 64, 256, 1024)
_EXTRA_KWARGS = ("logits_processor", "prompt_buckets", "decoder_input_ids", "decoder_attention_mask")


def prompt_bucket(length: int, buckets: tuple[int, ...] | None = None) -> int:
    """The smallest bucket >= length (powers of two past the last bucket)."""
    for bucket in buckets or DEFAULT_PROMPT_BUCKETS:
        if bucket >= length:
            return bucket
    return 1 << max(length - 1, 0).bit_length()


def top_k_bucket(top_k: int, vocab_size: int) -> int:
    """Static `lax.top_k` size for a dynamic top_k: the next power of two, at least 64."""
    return min(max(64, 1 << max(top_k - 1, 0).bit_length()), vocab_size)


def _is_encoder_decoder(model: Any) -> bool:
    return getattr(type(model), "is_seq2seq_lm", False)


class GenerationMixin:
    """Adds `generate` to models with `is_causal_lm = True` or `is_seq2seq_lm = True`."""

    # --- transformers 4.57's per-model hooks, written once --------------------------------------
    # A model whose decoder prompts may start before the start token (text conditioning the decoding) takes
    # `decoder_input_ids` as they are, as transformers 5 does for it.
    decoder_prompt_is_complete: bool = False

    def prepare_inputs_for_generation(self, input_ids, max_length: int, attention_mask=None) -> dict[str, Any]:
        """A fresh cache for `max_length`, the cache-wide attention mask and the prompt's position ids."""
        batch_size, seq_length = input_ids.shape
        past_key_values = self.init_cache(batch_size, max_length)
        # Positions past the prompt are masked by causality, so one static mask serves the whole loop.
        extended_attention_mask = jnp.ones((batch_size, max_length), dtype="i4")
        if attention_mask is not None:
            position_ids = attention_mask.cumsum(axis=-1) - 1
            extended_attention_mask = lax.dynamic_update_slice(
                extended_attention_mask, jnp.asarray(attention_mask, "i4"), (0, 0)
            )
        else:
            position_ids = jnp.broadcast_to(jnp.arange(seq_length, dtype="i4")[None, :], (batch_size, seq_length))
        return {"past_key_values": past_key_values, "attention_mask": extended_attention_mask,
                "position_ids": position_ids}

    def update_inputs_for_generation(self, model_outputs, model_kwargs: dict[str, Any]) -> dict[str, Any]:
        model_kwargs["past_key_values"] = model_outputs.past_key_values
        model_kwargs["position_ids"] = model_kwargs["position_ids"][:, -1:] + 1
        return model_kwargs

    def _load_generation_config(self, path: str, hub_kwargs: dict[str, Any]) -> None:
        """from_pretrained: take `generation_config.json` from the checkpoint when it has one."""
        if not self.can_generate():
            return
        from flaxformers.checkpoints.hub import resolve_file
        from flaxformers.generation.config import GENERATION_CONFIG_NAME

        try:
            found = resolve_file(path, GENERATION_CONFIG_NAME, required=False, **hub_kwargs)
        except OSError:  # offline, or a repo without the file: keep the config derived from config.json
            found = None
        if found:
            with open(found, encoding="utf-8") as f:
                self.generation_config = GenerationConfig.from_dict(json.load(f))

    # --- generate --------------------------------------------------------------------------------
    def generate(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        generation_config: GenerationConfig | None = None,
        prng_key: jax.Array | None = None,
        params: dict | None = None,
        streamer: Any = None,
        **kwargs: Any,
    ):
        """Generate token ids with greedy search, sampling or beam search.

        `input_ids` [B, T] is the (left-padded) prompt and `attention_mask` [B, T] marks its real
        tokens. For an encoder-decoder `input_ids` is the source (padded on either side) and the
        decoder starts from `decoder_start_token_id`, or from `decoder_input_ids=` [B, T'] when given
        (left-padded, with `decoder_attention_mask=` [B, T'], when the rows' lengths differ);
        for an image encoder-decoder the source is `pixel_values` [B, C, H, W] (positional or by name).
        Keyword arguments override `generation_config` (default: `model.generation_config`).
        `streamer` (an object with `put(tokens)` and `end()`, e.g. `TextStreamer`) receives the
        (decoder) prompt, then each new token as it is made. Returns `FlaxGreedySearchOutput`,
        `FlaxSampleOutput` or `FlaxBeamSearchOutput` with `sequences` [B * num_return_sequences,
        T + max_new_tokens], T the (decoder) prompt's length (rows that stopped early are padded
        with `pad_token_id`).

        `jax.jit(model.generate)(input_ids, attention_mask=mask)` traces the whole loop, as in
        transformers 4.x: the settings are static (from the generation config), nothing goes to the
        host, and the mask is trusted to be left-padded (for an encoder-decoder the source is used as
        it is padded, without a bucket).
        """
        if not self.can_generate():
            raise TypeError(
                f"{type(self).__name__} cannot generate: use a model with a language-modeling head "
                "(e.g. FlaxGPT2LMHeadModel, FlaxAutoModelForCausalLM, FlaxAutoModelForSeq2SeqLM)."
            )
        if input_ids is None:  # the source by the model's own input name (pixel_values=)
            input_ids = kwargs.pop(self.main_input_name, None)
        if input_ids is None:
            raise ValueError(f"generate() needs the prompt: pass {self.main_input_name} (positional or by name).")
        base = generation_config if generation_config is not None else self.generation_config
        config = (base or GenerationConfig.from_model_config(self.config)).copy()
        extra = {k: kwargs.pop(k) for k in _EXTRA_KWARGS if k in kwargs}
        unused = config.update(**kwargs)
        if unused:
            raise ValueError(
                f"generate() got unknown keyword arguments {sorted(unused)}; expected GenerationConfig keys "
                "(max_new_tokens, do_sample, temperature, top_k, top_p, num_beams, ...)."
            )
        config.validate()
        request = GenerationRequest.build(self, input_ids, attention_mask, config, "max_length" in kwargs, extra)
        params = params if params is not None else self.params
        if streamer is not None and request.plan.mode == "beam":
            raise ValueError("`streamer` cannot be used with beam search (num_beams > 1); use num_beams=1.")
        if streamer is not None and request.traced:
            raise ValueError("`streamer` cannot be used under jax.jit: a traced generate returns all tokens at once.")
        prng_key = prng_key if prng_key is not None else jax.random.PRNGKey(0)
        return request.run(self, params, prng_key, streamer)


FlaxGenerationMixin = GenerationMixin  # 4.x's name


class GenerationRequest:
    """One generate call, resolved: the plan (static) and the arrays and processors (traced)."""

    @classmethod
    def build(cls, model, input_ids, attention_mask, config: GenerationConfig, explicit_max_length: bool,
              extra: dict[str, Any]) -> GenerationRequest:
        self = cls()
        # Under jax.jit the prompt is a tracer: values stay on the device, only shapes are known.
        self.traced = any(isinstance(x, jax.core.Tracer) for x in (input_ids, attention_mask))
        xp = jnp if self.traced else np
        self.encoder_inputs = None
        if _is_encoder_decoder(model) and model.main_input_name != "input_ids":
            # a source that is not tokens (an image's pixel_values, audio): the model lays it out for its encoder,
            # with its mask when one is given (audio padded in a batch)
            mask_given = {} if attention_mask is None else {"attention_mask": attention_mask}
            self.encoder_inputs = model.encoder_inputs_for_generation(input_ids, **mask_given)
            ids, mask = _decoder_prompt(model, config, next(iter(self.encoder_inputs.values())).shape[0],
                                        extra.get("decoder_input_ids"), extra.get("decoder_attention_mask"), xp)
        elif _is_encoder_decoder(model):
            # the source goes to the encoder; the decoder's prompt is its start token (or decoder_input_ids)
            ids, mask = _checked_tokens(model, input_ids, attention_mask, "input_ids", xp, model._source_config)
            buckets = (ids.shape[1],) if self.traced else extra.get("prompt_buckets")
            self.encoder_inputs = _encoder_inputs(model, ids, mask, config, buckets, xp)
            ids, mask = _decoder_prompt(model, config, ids.shape[0], extra.get("decoder_input_ids"),
                                        extra.get("decoder_attention_mask"), xp)
        else:
            ids, mask = _checked_tokens(model, input_ids, attention_mask, "input_ids", xp)
            if not self.traced:
                _check_left_padded(mask, "attention_mask")
        batch, prompt_len = ids.shape
        vocab = model._token_config.vocab_size  # the decoder's, for a model of several parts

        # special tokens and lengths, as transformers 5 resolves them (shared with the PyTorch twin)
        positions = model._token_config.position_limit
        resolved = budget(config, prompt_len, positions, explicit_max_length)
        eos, max_new, min_length = resolved.eos, resolved.max_new_tokens, resolved.min_length
        longest = prompt_len if self.traced else int(mask.sum(axis=1).max())  # traced: the padded width counts
        check_positions(longest, max_new, positions, "max_position_embeddings")
        fill = resolved.pad if resolved.pad is not None else 0  # what finished rows and unused columns hold
        max_length = prompt_len + max_new

        # mode
        num_beams, nrs = int(config.num_beams), int(config.num_return_sequences)
        if config.do_sample and num_beams > 1:
            raise NotImplementedError("Beam sampling (do_sample=True with num_beams > 1) is not supported.")
        if num_beams == 1 and not config.do_sample and nrs != 1:
            raise ValueError(f"Greedy search returns one sequence per prompt; got num_return_sequences={nrs}. "
                             "Use do_sample=True or num_beams >= num_return_sequences.")
        if num_beams > 1 and nrs > num_beams:
            raise ValueError(f"num_return_sequences={nrs} must be <= num_beams={num_beams}.")
        mode = "beam" if num_beams > 1 else ("sample" if config.do_sample else "greedy")
        if mode == "sample" and nrs > 1:  # each prompt row becomes nrs rows
            ids, mask = xp.repeat(ids, nrs, axis=0), xp.repeat(mask, nrs, axis=0)
            if self.encoder_inputs is not None:
                self.encoder_inputs = {k: xp.repeat(v, nrs, axis=0) for k, v in self.encoder_inputs.items()}

        # bucket: left-pad to a shared length so similar prompts reuse one compiled loop (a traced
        # call is compiled with its caller, for its own shape)
        buckets = DECODER_PROMPT_BUCKETS if self.encoder_inputs is not None else extra.get("prompt_buckets")
        bucket = prompt_len if self.traced else prompt_bucket(prompt_len, buckets)
        offset = bucket - prompt_len
        ids = xp.concatenate([xp.full((ids.shape[0], offset), fill, xp.int32), ids.astype(xp.int32)], axis=1)
        mask = xp.concatenate([xp.zeros((mask.shape[0], offset), xp.int32), mask], axis=1)

        # processors, in transformers 5's order; lengths count from the bucket offset
        i32 = lambda v: np.asarray(v, np.int32)  # noqa: E731  fixed dtypes: a new value never retraces
        f32 = lambda v: np.asarray(v, np.float32)  # noqa: E731
        start = i32(offset)
        eos_arr = i32(eos).reshape(-1)
        processors: list[FlaxLogitsProcessor] = []
        if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
            ignore = xp.argmax(mask[:, offset:] != 0, axis=1)  # each row's left padding is not penalised
            if mode == "beam":
                ignore = xp.repeat(ignore, num_beams)
            processors.append(FlaxRepetitionPenaltyLogitsProcessor(
                f32(config.repetition_penalty), ignore.astype(xp.int32), start))
        if config.no_repeat_ngram_size:
            processors.append(FlaxNoRepeatNGramLogitsProcessor(int(config.no_repeat_ngram_size), start))
        if eos and min_length > 0:
            processors.append(FlaxMinLengthLogitsProcessor(i32(min_length), eos_arr, start))
        if config.forced_bos_token_id is not None:
            processors.append(FlaxForcedBOSTokenLogitsProcessor(i32(config.forced_bos_token_id), start))
        if config.forced_eos_token_id is not None:
            forced_eos = i32(token_ids(config.forced_eos_token_id, "forced_eos_token_id"))
            processors.append(FlaxForcedEOSTokenLogitsProcessor(i32(max_length), forced_eos, start))
        if config.suppress_tokens is not None:
            processors.append(FlaxSuppressTokensLogitsProcessor(
                i32(token_ids(config.suppress_tokens, "suppress_tokens"))))
        if config.begin_suppress_tokens is not None:
            begin = prompt_len + (1 if prompt_len == 1 and config.forced_bos_token_id is not None else 0)
            forced_ids = getattr(config, "forced_decoder_ids", None)
            if forced_ids:  # generation starts after the last forced token
                begin += forced_ids[-1][0]
            processors.append(FlaxSuppressTokensAtBeginLogitsProcessor(
                i32(token_ids(config.begin_suppress_tokens, "begin_suppress_tokens")), i32(begin), start))
        if getattr(config, "forced_decoder_ids", None):  # 4.57: index i forces the token at prompt length + i - 1
            forced = {prompt_len + int(index) - 1: token for index, token in config.forced_decoder_ids}
            processors.append(FlaxForceTokensLogitsProcessor(forced, start))
        for processor in extra.get("logits_processor") or ():
            # one that counts positions (a `start` field) counts them from the bucket's offset, as the built-in ones
            counts = "start" in getattr(processor, "__dataclass_fields__", {})
            processors.append(processor.replace(start=start) if counts else processor)

        top_k = int(config.top_k or 0)
        top_p = 1.0 if config.top_p is None else float(config.top_p)
        self.plan = engine.Plan(
            mode=mode, batch=ids.shape[0], bucket=bucket, max_new_tokens=max_new, num_beams=num_beams,
            top_k_bucket=top_k_bucket(top_k, vocab) if mode == "sample" and top_k > 0 else 0,
            full_top_p=mode == "sample" and top_k == 0 and top_p < 1.0,
            # the source's length (tokens, or an image's rows)
            encoder_bucket=0 if self.encoder_inputs is None else next(iter(self.encoder_inputs.values())).shape[1],
        )
        self.sampling = engine.Sampling(
            temperature=f32(config.temperature if mode == "sample" and config.temperature else 1.0),
            top_k=i32(min(top_k, vocab)), top_p=f32(top_p), min_p=f32(config.min_p or 0.0),
        )
        if mode == "beam" and not resolved.pad and eos:  # transformers 5 fills finished hypotheses with `pad or eos[0]`
            fill = eos[0]
        self.consts = engine.Consts(
            pad_token_id=i32(fill), eos_token_id=eos_arr,
            length_denominators=engine.length_denominators(max_new, config.length_penalty if mode == "beam" else 1.0),
            length_penalty=f32(config.length_penalty if mode == "beam" else 1.0),
            early_stopping=np.asarray(config.early_stopping is True),
            never_stop_early=np.asarray(config.early_stopping == "never"),
        )
        self.processors = tuple(processors)
        self.ids, self.mask, self.offset, self.nrs = ids, mask, offset, nrs
        return self

    def run(self, model, params, prng_key, streamer):
        gen = engine.compiled_generator(model, self.plan)
        plan = self.plan
        # The bucket padding is cut off on the host (a strided device slice would be a compiled
        # copy); a traced call keeps everything on the device.
        host = (lambda x: x) if self.traced else np.asarray
        if plan.mode == "beam":
            state = gen.prefill(params, self.ids, self.mask, self.processors, self.consts, self.encoder_inputs)
            state = gen.decode(params, state, self.processors, self.consts, np.int32(plan.length))
            sequences = host(state.sequences)[:, : self.nrs].reshape(-1, plan.length)[:, self.offset:]
            scores = host(state.scores)[:, : self.nrs].reshape(-1)
            return FlaxBeamSearchOutput(sequences=self._out(sequences), scores=self._out(scores))

        output_cls = FlaxSampleOutput if plan.mode == "sample" else FlaxGreedySearchOutput
        args = (self.processors, self.sampling, self.consts)
        state, tokens, stopped = gen.prefill(params, self.ids, self.mask, *args, prng_key, self.encoder_inputs)
        if streamer is None:
            state, _, _ = gen.decode(params, state, *args, np.int32(plan.length))
            return output_cls(sequences=self._out(host(state.sequences)[:, self.offset:]))

        streamer.put(self.ids[:, self.offset:])
        cur_len, pending = plan.bucket + 1, (state, tokens, stopped)
        while True:
            state, tokens, stopped = pending
            # dispatch the next step before reading this token, so the device never waits on the host
            ahead = gen.decode(params, state, *args, np.int32(cur_len + 1)) if cur_len < plan.length else None
            streamer.put(np.asarray(tokens))
            if ahead is None or bool(stopped):
                final = state if ahead is None else ahead[0]  # `state` was donated to the step ahead
                break
            pending, cur_len = ahead, cur_len + 1
        streamer.end()
        return output_cls(sequences=_to_jax(np.asarray(final.sequences)[:, self.offset:]))

    def _out(self, array: Any) -> jax.Array:
        return array if self.traced else _to_jax(array)


def _checked_tokens(model: Any, input_ids: Any, attention_mask: Any, name: str, xp: Any = np,
                    config: Any = None) -> tuple[Any, Any]:
    """`input_ids` and its mask as int32 arrays [B, T] (numpy, or jax.numpy under jit), with clear errors
    for bad shapes and ids."""
    ids = xp.asarray(input_ids)
    if ids.ndim != 2 or not xp.issubdtype(ids.dtype, xp.integer):
        raise ValueError(f"{name} must be an integer array [batch, sequence], got shape {ids.shape} "
                         f"and dtype {ids.dtype}; wrap a single prompt as [ids].")
    if ids.shape[1] == 0:
        raise ValueError(f"{name} is empty: pass at least one token (e.g. the bos token).")
    model._check_input_ids(ids, config=config)
    mask = xp.ones_like(ids, xp.int32) if attention_mask is None else xp.asarray(attention_mask).astype(xp.int32)
    if mask.shape != ids.shape:
        raise ValueError(f"attention_mask has shape {mask.shape} but {name} has {ids.shape}; they must match.")
    return ids.astype(xp.int32), mask


def _encoder_inputs(model: Any, ids: Any, mask: Any, config: GenerationConfig, buckets: tuple[int, ...] | None,
                    xp: Any = np) -> dict[str, Any]:
    """The source right-padded to its bucket: the extra columns are masked, so every real token keeps
    its position, however the caller padded. The bucket stays within learned positions."""
    length = ids.shape[1]
    positions = model._source_config.position_limit
    if positions is not None and length > positions:
        raise ValueError(f"input_ids has {length} tokens, more than the model's max_position_embeddings={positions}. "
                         "Truncate the source (tokenizer(..., truncation=True)).")
    bucket = prompt_bucket(length, buckets)
    if positions is not None:
        bucket = min(bucket, positions)
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    extra = bucket - length
    return {"input_ids": xp.pad(ids, ((0, 0), (0, extra)), constant_values=pad),
            "attention_mask": xp.pad(mask, ((0, 0), (0, extra)))}


def _decoder_prompt(model: Any, config: GenerationConfig, batch: int, decoder_input_ids: Any,
                    decoder_attention_mask: Any = None, xp: Any = np) -> tuple[Any, Any]:
    """The decoder's first tokens and their mask, as transformers 5 makes them: `decoder_start_token_id`
    (else `bos_token_id`), prepended to `decoder_input_ids` when none of their rows starts with it (under
    jax.jit, `decoder_input_ids` are used as they are). A `decoder_attention_mask` marks left padding."""
    start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
    if start is None:
        raise ValueError("decoder_start_token_id (or bos_token_id) must be set to generate with an encoder-decoder: "
                         "pass decoder_start_token_id= or set it in the generation config.")
    starts = xp.full((batch, 1), start, xp.int32)
    if decoder_input_ids is None:
        if decoder_attention_mask is not None:
            raise ValueError("decoder_attention_mask was given without decoder_input_ids; pass both or neither.")
        return starts, xp.ones_like(starts)
    ids, mask = _checked_tokens(model, decoder_input_ids, decoder_attention_mask, "decoder_input_ids", xp)
    if ids.shape[0] != batch:
        raise ValueError(f"decoder_input_ids has {ids.shape[0]} rows but the source has {batch}; pass one per source.")
    if isinstance(ids, jax.core.Tracer):
        return ids, mask
    _check_left_padded(mask, "decoder_attention_mask")
    if not np.all(ids[:, 0] != start) or model.decoder_prompt_is_complete:
        return ids, mask
    return np.concatenate([starts, ids], axis=1), np.concatenate([np.ones_like(starts), mask], axis=1)


def _check_left_padded(mask: np.ndarray, name: str) -> None:
    if mask.shape[1] > 1 and np.any((mask[:, -1] == 0) & (mask.sum(axis=1) > 0)):
        raise ValueError(f"{name} is right-padded; generation continues each row after its last token, so it needs "
                         "left padding: tokenize with padding_side='left'.")


def _to_jax(array: np.ndarray) -> jax.Array:
    return jax.device_put(np.ascontiguousarray(array))  # a strided view would cost a compiled copy


__all__ = ["GenerationMixin", "FlaxGreedySearchOutput", "FlaxSampleOutput", "FlaxBeamSearchOutput", "prompt_bucket"]

"""`generate` for the PyTorch twin: greedy, sampling and beam search over the KV cache.

It reproduces transformers 5's decoding step for step (same processors in the same order, the same
`torch.multinomial` draws, the same vectorised beam search), so seeded runs give the same tokens.
Settings come from flaxformers' shared `GenerationConfig` (and its `validate()`). The logits
processors are small torch functions here: the Flax engine's processors are JAX pytrees over its
static, left-padded token buffer, and calling them from torch would copy every step's logits to the
host and back, and would not reproduce transformers' torch sampling draws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from flaxformers.generation.config import DEFAULTS, GenerationConfig, budget, check_positions

logger = logging.getLogger(__name__)
Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (ids [B, L], scores [B, V]) -> scores

# Settings this loop acts on; any other generation setting must keep its default.
_SUPPORTED = {
    "max_length", "max_new_tokens", "min_length", "min_new_tokens", "do_sample", "temperature", "top_k", "top_p",
    "min_p", "repetition_penalty", "num_beams", "length_penalty", "early_stopping", "num_return_sequences",
    "bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "use_cache",
}


# --- logits processors (transformers' order: penalties and length rules, then the sampling warpers) ----
def _repetition_penalty(penalty: float, prompt_pad: torch.Tensor | None) -> Processor:
    def apply(ids, scores):
        vocab = scores.shape[-1]
        if prompt_pad is not None:  # left padding of the prompt is not a repetition
            positions = torch.arange(ids.shape[1], device=ids.device)
            ids = ids.masked_fill(positions[None, :] < prompt_pad[:, None], vocab)
        ids = ids.clamp(max=vocab)
        padded = F.pad(scores, (0, 1))
        picked = padded.gather(1, ids)
        picked = torch.where(picked < 0, picked * penalty, picked / penalty)
        return padded.scatter(1, ids, picked)[:, :vocab]
    return apply


def _min_length(min_length: int, eos: torch.Tensor) -> Processor:
    def apply(ids, scores):
        if ids.shape[-1] >= min_length:
            return scores
        is_eos = torch.isin(torch.arange(scores.shape[-1], device=scores.device), eos)
        return torch.where(is_eos, -float("inf"), scores)
    return apply


def _temperature(t: float) -> Processor:
    return lambda ids, scores: scores / t


def _top_k(k: int, keep: int) -> Processor:
    k = max(k, keep)

    def apply(ids, scores):
        kth = torch.topk(scores, min(k, scores.shape[-1]))[0][..., -1, None]
        return scores.masked_fill(scores < kth, -float("inf"))
    return apply


def _top_p(p: float, keep: int) -> Processor:
    def apply(ids, scores):
        sorted_logits, order = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - p)
        remove[..., -keep:] = 0
        return scores.masked_fill(remove.scatter(1, order, remove), -float("inf"))
    return apply


def _min_p(p: float, keep: int) -> Processor:
    def apply(ids, scores):
        probs = torch.softmax(scores, dim=-1)
        remove = probs < p * probs.amax(dim=-1, keepdim=True)
        remove.scatter_(-1, torch.topk(probs, min(keep, probs.shape[-1]), dim=-1).indices, False)
        return scores.masked_fill(remove, -float("inf"))
    return apply


def logits_processors(cfg: GenerationConfig, prompt_len: int, eos: torch.Tensor | None,
                      attention_mask: torch.Tensor) -> list[Processor]:
    out: list[Processor] = []
    if cfg.repetition_penalty is not None and cfg.repetition_penalty != 1.0:
        out.append(_repetition_penalty(float(cfg.repetition_penalty), (attention_mask != 0).int().argmax(dim=1)))
    if eos is not None and cfg.min_length:
        out.append(_min_length(cfg.min_length, eos))
    if eos is not None and cfg.min_new_tokens:
        out.append(_min_length(prompt_len + cfg.min_new_tokens, eos))
    if cfg.do_sample:
        n_eos = 0 if eos is None else len(eos)
        keep = (n_eos + 1 if n_eos else 2) if cfg.num_beams > 1 else 1
        if cfg.temperature is not None and cfg.temperature != 1.0:
            out.append(_temperature(cfg.temperature))
        if cfg.top_k:
            out.append(_top_k(cfg.top_k, keep))
        if cfg.top_p is not None and cfg.top_p < 1.0:
            out.append(_top_p(cfg.top_p, keep))
        if cfg.min_p is not None:
            out.append(_min_p(cfg.min_p, keep))
    return out


def _process(processors: list[Processor], ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    for processor in processors:
        scores = processor(ids, scores)
    return scores


# --- the loop ------------------------------------------------------------------------------------------
class _Decoder:
    """Feeds the model: the whole prompt first, then one token per step with the cache."""

    def __init__(self, model, attention_mask: torch.Tensor, use_cache: bool):
        self.model, self.mask, self.use_cache = model, attention_mask, use_cache
        self.positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
        self.cache: Any = None

    def next_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits [B, V] (fp32) of the token after `ids` [B, L]."""
        if self.cache is not None:
            ids, positions = ids[:, -1:], self.positions[:, -1:]
        else:
            positions = self.positions
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                         past_key_values=self.cache, use_cache=self.use_cache, return_dict=True)
        if self.use_cache:
            self.cache = out.past_key_values
        return out.logits[:, -1].to(dtype=torch.float32, copy=True)

    def advance(self) -> None:
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=-1)
        self.positions = torch.cat([self.positions, self.positions[:, -1:] + 1], dim=-1)


def _sample(decoder: _Decoder, ids, processors, cfg, max_length: int, eos, pad) -> torch.Tensor:
    unfinished = torch.ones(ids.shape[0], dtype=torch.long, device=ids.device)
    while True:
        scores = _process(processors, ids, decoder.next_logits(ids))
        if cfg.do_sample:
            tokens = torch.multinomial(F.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = torch.argmax(scores, dim=-1)
        if eos is not None:  # finished rows keep emitting padding
            tokens = tokens * unfinished + pad * (1 - unfinished)
        ids = torch.cat([ids, tokens[:, None]], dim=-1)
        decoder.advance()
        if eos is not None:
            unfinished = unfinished & ~torch.isin(tokens, eos)
        if ids.shape[1] >= max_length or unfinished.max() == 0:
            return ids


def _gather_beams(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    while index.dim() < x.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(x, index, dim=1)


def _beam_search(decoder: _Decoder, ids, processors, cfg, max_length: int, eos, pad) -> torch.Tensor:
    """transformers 5's vectorised beam search: keep the best `num_beams` running and finished
    hypotheses per batch row, scoring finished ones by sum(log p) / generated_length ** length_penalty."""
    beams, device = cfg.num_beams, ids.device
    batch, prompt_len = ids.shape[0] // beams, ids.shape[1]
    early, length_penalty = cfg.early_stopping, cfg.length_penalty
    n_keep = max(2, 1 + (0 if eos is None else len(eos))) * beams
    is_top = torch.arange(n_keep, device=device) < beams
    # transformers 5's beam search fills with `pad_token_id or eos_token_id[0]`: a pad of 0 gives way to eos there.
    fill = (pad or int(eos[0])) if eos is not None else -1

    running = torch.full((batch, beams, max_length), fill, dtype=torch.int64, device=device)
    running[:, :, :prompt_len] = ids.view(batch, beams, prompt_len)
    finished_seqs = running.clone()
    running_scores = torch.zeros(batch, beams, device=device)
    running_scores[:, 1:] = -1e9
    finished_scores = torch.full((batch, beams), -1e9, device=device)
    is_finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)
    can_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)
    running_origin = torch.full((batch, beams, max_length - prompt_len), -1, dtype=torch.int32, device=device)
    finished_origin = running_origin.clone()
    cur = prompt_len
    flat = ids
    while True:
        log_probs = _process(processors, flat, F.log_softmax(decoder.next_logits(flat), dim=-1))
        vocab = log_probs.shape[-1]
        log_probs = (log_probs.view(batch, beams, vocab) + running_scores[:, :, None]).view(batch, -1)
        if cfg.do_sample:
            top_idx = torch.multinomial(F.softmax(log_probs, dim=-1), num_samples=n_keep)
            top_lp = log_probs.gather(1, top_idx)
        else:
            top_lp, top_idx = torch.topk(log_probs, k=n_keep)
        from_beam = top_idx // vocab
        top_seqs = _gather_beams(running, from_beam)
        top_seqs[:, :, cur] = top_idx % vocab
        top_origin = _gather_beams(running_origin, from_beam)
        top_origin[:, :, cur - prompt_len] = (from_beam + torch.arange(batch, device=device)[:, None] * beams).int()
        hits = torch.full_like(is_top[None].expand(batch, -1), cur + 1 >= max_length)
        if eos is not None:
            hits = hits | torch.isin(top_seqs[:, :, cur], eos)

        # The best unfinished continuations run on.
        open_lp = top_lp + hits.float() * -1e9
        keep = torch.topk(open_lp, k=beams)[1]
        running, running_scores, running_origin = (_gather_beams(x, keep) for x in (top_seqs, open_lp, top_origin))

        # Continuations that just ended compete with the finished hypotheses.
        just_done = hits & is_top[None]
        done_lp = top_lp / ((cur + 1 - prompt_len) ** length_penalty)
        done_lp = done_lp + (is_finished.all(-1, keepdim=True) & (early is True)).float() * -1e9
        done_lp = done_lp + (~can_improve).float() * -1e9 + (~just_done) * -1e9
        merged_scores = torch.cat([finished_scores, done_lp], dim=1)
        best = torch.topk(merged_scores, k=beams)[1]
        finished_seqs = _gather_beams(torch.cat([finished_seqs, top_seqs], dim=1), best)
        finished_scores = _gather_beams(merged_scores, best)
        finished_origin = _gather_beams(torch.cat([finished_origin, top_origin], dim=1), best)
        is_finished = _gather_beams(torch.cat([is_finished, just_done], dim=1), best)

        if decoder.cache is not None:
            decoder.cache.reorder_cache(running_origin[..., cur - prompt_len].reshape(-1).long())
        cur += 1
        decoder.advance()
        best_len = (max_length if early == "never" and length_penalty > 0.0 else cur) - prompt_len
        best_running = running_scores[:, :1] / (best_len**length_penalty)
        worst_done = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True)[0], -1.0e9)
        can_improve = can_improve & (best_running > worst_done).any(dim=-1, keepdim=True)
        open_beams = ~(is_finished.all() & (early is True))
        if not bool(can_improve.any() & open_beams & ~hits.all()):
            break
        flat = running[:, :, :cur].reshape(batch * beams, cur)

    n = cfg.num_return_sequences
    sequences = finished_seqs[:, :n].reshape(batch * n, -1)
    generated = (finished_origin[:, :n].reshape(batch * n, -1) + 1).bool().sum(dim=1).max()
    return sequences[:, : prompt_len + int(generated)]


class GenerationMixin:
    """`generate` for the causal-LM heads of the PyTorch twin."""

    @classmethod
    def can_generate(cls) -> bool:
        return True

    def _default_generation_config(self) -> GenerationConfig:
        return GenerationConfig.from_model_config(self.config)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        **kwargs: Any,
    ) -> torch.LongTensor:
        """Decode greedily, by sampling (`do_sample=True`) or by beam search (`num_beams > 1`).

        Keyword arguments are generation settings (max_new_tokens, temperature, top_k, top_p, min_p,
        repetition_penalty, min_length, num_beams, length_penalty, early_stopping,
        num_return_sequences, eos_token_id, pad_token_id, ...). Returns the prompt and the new
        tokens, `[batch * num_return_sequences, length]`; finished rows are padded with pad_token_id.
        """
        cfg = (generation_config or getattr(self, "generation_config", None) or
               self._default_generation_config()).copy()
        unused = cfg.update(**kwargs)
        if unused:
            raise TypeError(f"generate() got unknown arguments {sorted(unused)}; pass generation settings.")
        cfg.validate()  # the Flax engine's checks: one set of rules for what a setting may be
        unsupported = {k: v for k, v in cfg.to_dict().items()
                       if k in DEFAULTS and k not in _SUPPORTED and v != DEFAULTS[k]}
        if unsupported:
            raise NotImplementedError(f"The torch twin's generate does not support {unsupported}; use the Flax "
                                      "engine (flaxformers.generation) or transformers' generate for these.")
        device = self.device
        if input_ids is None:
            if cfg.bos_token_id is None:
                raise ValueError("Pass input_ids, or set bos_token_id to start from a single BOS token.")
            input_ids = torch.full((1, 1), cfg.bos_token_id, dtype=torch.long, device=device)
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, length]; got shape {list(input_ids.shape)}.")
        if input_ids.shape[1] == 0:
            raise ValueError("input_ids is empty: pass at least one prompt token (e.g. the bos token).")
        input_ids = input_ids.to(device)
        prompt_len = input_ids.shape[1]
        explicit = "max_length" in kwargs or generation_config is not None
        resolved = budget(cfg, prompt_len, self.config.n_positions, explicit)  # shared with the Flax engine
        eos_ids, pad = resolved.eos, resolved.pad
        eos = torch.tensor(eos_ids, device=device) if eos_ids else None
        if cfg.pad_token_id is None and pad is not None:
            logger.info("Setting pad_token_id to eos_token_id=%d for open-end generation.", pad)
        max_length = prompt_len + resolved.max_new_tokens
        if attention_mask is None:
            infer = pad is not None and bool((input_ids == pad).any()) and pad not in eos_ids
            attention_mask = (input_ids != pad).long() if infer else torch.ones_like(input_ids)
        attention_mask = attention_mask.to(device)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask has shape {list(attention_mask.shape)} but input_ids has "
                             f"{list(input_ids.shape)}; they must match (1 for prompt tokens, 0 for padding).")
        # checked now: the position embedding would fail mid-decode
        check_positions(int(attention_mask.sum(dim=1).max()), resolved.max_new_tokens, self.config.n_positions,
                        "n_positions")
        if cfg.num_beams > 1 and cfg.num_return_sequences > cfg.num_beams:
            raise ValueError(f"num_return_sequences={cfg.num_return_sequences} must be <= num_beams={cfg.num_beams}.")
        expand = cfg.num_beams if cfg.num_beams > 1 else cfg.num_return_sequences
        input_ids = input_ids.repeat_interleave(expand, dim=0)
        attention_mask = attention_mask.repeat_interleave(expand, dim=0)
        processors = logits_processors(cfg, prompt_len, eos, attention_mask)
        decoder = _Decoder(self, attention_mask, use_cache=cfg.to_dict().get("use_cache", True) is not False)
        search = _beam_search if cfg.num_beams > 1 else _sample
        return search(decoder, input_ids, processors, cfg, max_length, eos, pad)

"""Rotary position embedding parameters, as configs state them: read once, checked, frozen.

A config hands the shared RoPE (`nn/rope.py`) a `RopeSpec` for each layer type. This module reads
the keys the way transformers 5 does, in both spellings: transformers 4.x's `rope_theta` +
`rope_scaling` (whose kind is `type` or `rope_type`) and transformers 5's `rope_parameters`, flat or
nested by layer type. It imports no jax, so configs stay light.

The variants are transformers 5's `modeling_rope_utils`: default, linear, dynamic (NTK), llama3,
yarn and longrope, on the whole head or its first `rotary_dim` dims (`partial_rotary_factor`), in
the rotate-half layout or the interleaved one (pairs 2i, 2i + 1, as GPT-J and RoFormer rotate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROPE_TYPES = ("default", "linear", "dynamic", "llama3", "yarn", "longrope")
FULL, SLIDING = "full_attention", "sliding_attention"  # transformers' layer types
_REQUIRED = {
    "linear": ("factor",),
    "dynamic": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor"),
    "yarn": (),  # `factor` may come from max / original max positions
    "longrope": ("short_factor", "long_factor"),
}


@dataclass(frozen=True)
class RopeSpec:
    """Everything the rotation of one layer type needs (hashable, so traces can key on it)."""

    theta: float
    rotary_dim: int  # the first `rotary_dim` dims of each head rotate; the rest pass through
    rope_type: str = "default"
    interleaved: bool = False  # rotate pairs (2i, 2i + 1) instead of (i, i + rotary_dim / 2)
    factor: float = 1.0
    attention_factor: float = 1.0  # multiplies cos and sin (yarn, longrope)
    max_position_embeddings: int | None = None  # dynamic: the length the base frequencies fit
    original_max_position_embeddings: int | None = None  # llama3, yarn, longrope: the pretraining length
    low_freq_factor: float = 1.0  # llama3
    high_freq_factor: float = 4.0  # llama3
    beta_fast: float = 32.0  # yarn
    beta_slow: float = 1.0  # yarn
    truncate: bool = True  # yarn
    short_factor: tuple[float, ...] = ()  # longrope, one per frequency
    long_factor: tuple[float, ...] = ()

    @property
    def depends_on_length(self) -> bool:
        """The frequencies follow the longest position of each call (dynamic, longrope)."""
        return self.rope_type in ("dynamic", "longrope")


def rope_parameters(config: Any, layer_type: str | None = None) -> dict[str, Any]:
    """The flat RoPE parameters of a layer type, read as transformers 5 reads them.

    `rope_scaling` (4.x) wins over `rope_parameters` (5); either may be nested by layer type. The
    top-level `rope_theta` and `partial_rotary_factor` fill what the dict leaves out.
    """
    params = getattr(config, "rope_scaling", None) or getattr(config, "rope_parameters", None) or {}
    if FULL in params or SLIDING in params:
        params = params.get(layer_type or FULL) or params.get(FULL) or {}
    out = {"rope_theta": getattr(config, "rope_theta", 10_000.0), **params}
    partial = getattr(config, "partial_rotary_factor", None)
    if partial is not None:
        out.setdefault("partial_rotary_factor", partial)
    return out


def rope_spec(
    params: Mapping[str, Any], head_dim: int, max_position_embeddings: int | None, *, interleaved: bool = False
) -> RopeSpec:
    """A `RopeSpec` from flat transformers RoPE parameters; bad values raise a ValueError naming the key."""
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in ROPE_TYPES:
        raise ValueError(f"rope_type={rope_type!r} is not supported; expected one of {ROPE_TYPES}.")
    missing = [key for key in _REQUIRED.get(rope_type, ()) if params.get(key) is None]
    if missing:
        raise ValueError(f"{rope_type} rope scaling needs {missing} in rope_parameters (or rope_scaling).")
    theta = float(params.get("rope_theta", 10_000.0))
    partial = float(params.get("partial_rotary_factor") or 1.0)
    rotary_dim = int(head_dim * partial)
    _require(theta > 0, f"rope_theta={theta} must be positive.")
    _require(0 < rotary_dim <= head_dim and rotary_dim % 2 == 0,
             f"the rotary dims ({rotary_dim} = head_dim {head_dim} x partial_rotary_factor {partial}) must be an "
             "even number between 2 and head_dim.")
    original = params.get("original_max_position_embeddings")
    if rope_type in ("llama3", "yarn", "longrope") and original is None:
        original = max_position_embeddings  # transformers' default
    if rope_type in ("yarn", "longrope", "dynamic", "llama3"):
        _require((original or max_position_embeddings) is not None,
                 f"{rope_type} rope scaling needs max_position_embeddings or original_max_position_embeddings.")
    factor = params.get("factor")
    if factor is None and rope_type in ("yarn", "longrope"):
        factor = max_position_embeddings / original
    factor = 1.0 if factor is None or rope_type == "default" else float(factor)
    _require(factor > 0, f"rope scaling factor={factor} must be positive.")
    spec = dict(theta=theta, rotary_dim=rotary_dim, rope_type=rope_type, interleaved=interleaved, factor=factor,
                max_position_embeddings=max_position_embeddings if rope_type == "dynamic" else None,
                original_max_position_embeddings=int(original) if original is not None else None)
    if rope_type == "llama3":
        low, high = float(params["low_freq_factor"]), float(params["high_freq_factor"])
        _require(high > low, f"llama3 rope needs high_freq_factor > low_freq_factor, got {high} and {low}.")
        spec.update(low_freq_factor=low, high_freq_factor=high)
    elif rope_type == "yarn":
        spec.update(attention_factor=_yarn_attention_factor(params, factor),
                    beta_fast=float(params.get("beta_fast") or 32), beta_slow=float(params.get("beta_slow") or 1),
                    truncate=bool(params.get("truncate", True)))
    elif rope_type == "longrope":
        short, long = tuple(map(float, params["short_factor"])), tuple(map(float, params["long_factor"]))
        _require(len(short) == len(long) == rotary_dim // 2,
                 f"longrope short_factor and long_factor need rotary_dim / 2 = {rotary_dim // 2} entries each, "
                 f"got {len(short)} and {len(long)}.")
        attention = params.get("attention_factor")
        if attention is None:
            attention = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
        spec.update(short_factor=short, long_factor=long, attention_factor=float(attention))
    return RopeSpec(**spec)


def _yarn_attention_factor(params: Mapping[str, Any], factor: float) -> float:
    """The cos/sin scale of yarn: given, or from `factor` (and `mscale` / `mscale_all_dim`), as transformers."""
    if params.get("attention_factor") is not None:
        return float(params["attention_factor"])

    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    m, m_all = params.get("mscale"), params.get("mscale_all_dim")
    if m and m_all:
        return float(mscale(factor, m) / mscale(factor, m_all))
    return mscale(factor)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


__all__ = ["FULL", "ROPE_TYPES", "SLIDING", "RopeSpec", "rope_parameters", "rope_spec"]

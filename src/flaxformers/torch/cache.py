"""The KV cache of the PyTorch twin, and the checks on what callers pass as `past_key_values`.

What `past_key_values` may be, and what comes back in the output:
- `None` with `use_cache=True`: a new `flaxformers.torch.DynamicCache` is returned.
- A cache object (ours, or transformers 5's `DynamicCache` or anything else with
  `update(key, value, layer_idx)` and `get_seq_length()`): it is updated in place and the same
  object is returned, as transformers 5 does.
- Legacy tuples, one `(key, value)` (or `(key, value, cross_key, cross_value)`) per layer, each
  `[batch, heads, seq, head_dim]` (transformers 4.x's format): they are not modified, and the output
  holds new legacy tuples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


class CacheLayer:
    """Keys and values of one layer, `[B, N, S, H]` each."""

    __slots__ = ("keys", "values")

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        self.keys, self.values = keys, values


class DynamicCache:
    """A growing per-layer KV cache with the part of transformers' `DynamicCache` API that decoding uses.

    `layers[i].keys` / `.values` are `[B, N, S, H]`; cross-attention keys and values (computed once
    from `encoder_hidden_states`) live in `cross_layers`.
    """

    def __init__(self) -> None:
        self.layers: list[CacheLayer] = []
        self.cross_layers: dict[int, CacheLayer] = {}

    # --- what the attention calls -----------------------------------------------------------------
    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *_: Any, **__: Any):
        """Append `keys`/`values` `[B, N, T, H]` to layer `layer_idx`; return the whole `[B, N, S+T, H]`."""
        if layer_idx == len(self.layers):
            self.layers.append(CacheLayer(keys, values))
        elif layer_idx < len(self.layers):
            layer = self.layers[layer_idx]
            layer.keys = torch.cat([layer.keys, keys], dim=-2)
            layer.values = torch.cat([layer.values, values], dim=-2)
        else:
            raise ValueError(f"DynamicCache.update: layer {layer_idx} given before layer {len(self.layers)}.")
        layer = self.layers[layer_idx]
        return layer.keys, layer.values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.layers[layer_idx].keys.shape[-2] if layer_idx < len(self.layers) else 0

    def cross_kv(self, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        layer = self.cross_layers.get(layer_idx)
        return None if layer is None else (layer.keys, layer.values)

    def set_cross_kv(self, layer_idx: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.cross_layers[layer_idx] = CacheLayer(keys, values)

    # --- what generation calls --------------------------------------------------------------------
    def _map(self, fn) -> None:
        for layer in [*self.layers, *self.cross_layers.values()]:
            layer.keys, layer.values = fn(layer.keys), fn(layer.values)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keep batch rows `beam_idx` (beam search)."""
        self._map(lambda x: x.index_select(0, beam_idx.to(x.device)))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._map(lambda x: x[indices])

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._map(lambda x: x.repeat_interleave(repeats, dim=0))

    def crop(self, max_length: int) -> None:
        """Drop cached positions from `max_length` on (negative: that many from the end)."""
        if max_length < 0:
            max_length = self.get_seq_length() + max_length
        for layer in self.layers:
            layer.keys, layer.values = layer.keys[..., :max_length, :], layer.values[..., :max_length, :]

    # --- legacy format and container protocol -------------------------------------------------------
    def to_legacy_cache(self) -> tuple[tuple[torch.Tensor, ...], ...]:
        out = []
        for i, layer in enumerate(self.layers):
            cross = self.cross_kv(i)
            out.append((layer.keys, layer.values) + (cross if cross is not None else ()))
        return tuple(out)

    @classmethod
    def from_legacy_cache(cls, past: Any) -> DynamicCache:
        cache = cls()
        for i, layer in enumerate(past or ()):
            cache.update(layer[0], layer[1], i)
            if len(layer) == 4:
                cache.set_cross_kv(i, layer[2], layer[3])
        return cache

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        layer = self.layers[layer_idx]
        return layer.keys, layer.values

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"DynamicCache(layers={len(self)}, seq_length={self.get_seq_length()})"


def is_cache(obj: Any) -> bool:
    return callable(getattr(obj, "update", None)) and callable(getattr(obj, "get_seq_length", None))


def check_legacy_past(past: Any, num_layers: int) -> None:
    """Clear errors for legacy tuples that do not fit the model."""
    if not isinstance(past, (tuple, list)) or len(past) != num_layers:
        n = len(past) if isinstance(past, (tuple, list)) else type(past).__name__
        raise ValueError(
            f"past_key_values has {n} layers but the model has n_layer={num_layers}. Pass the "
            "past_key_values that this model returned (a Cache, or one (key, value) tuple per layer)."
        )
    for i, layer in enumerate(past):
        if not isinstance(layer, (tuple, list)) or len(layer) not in (2, 4) or not all(
            isinstance(t, torch.Tensor) and t.dim() == 4 for t in layer
        ):
            raise ValueError(
                f"past_key_values[{i}] must be a (key, value) or (key, value, cross_key, cross_value) tuple of "
                "tensors shaped [batch, heads, seq, head_dim]."
            )


def cached_kv_shape(cache: Any, layer_idx: int) -> tuple[int, ...] | None:
    """Shape of the keys already cached for a layer, when the cache exposes them."""
    layers = getattr(cache, "layers", None)
    if layers is None or layer_idx >= len(layers):
        return None
    keys = getattr(layers[layer_idx], "keys", None)
    return tuple(keys.shape) if isinstance(keys, torch.Tensor) and keys.dim() == 4 and keys.numel() else None


def check_cached_layer(cache: Any, layer_idx: int, new_keys: torch.Tensor) -> None:
    """The cached keys of this layer must share batch, heads and head_dim with the new ones."""
    shape = cached_kv_shape(cache, layer_idx)
    if shape is None:
        return
    b, n, _, h = new_keys.shape
    if (shape[0], shape[1], shape[3]) != (b, n, h):
        raise ValueError(
            f"past_key_values layer {layer_idx} holds keys of shape {list(shape)} "
            f"([batch, heads, seq, head_dim]), but this call needs batch={b}, heads={n}, head_dim={h}. "
            "Pass the cache returned for the same batch by this model (after prune_heads, start a new cache)."
        )

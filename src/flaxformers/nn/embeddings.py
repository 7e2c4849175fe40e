"""Input embeddings of the encoders: word + position + segment embeddings, and their position schemes.

Param names are transformers' (`word_embeddings`, `position_embeddings`, `token_type_embeddings`,
`LayerNorm`), so every encoder family's `embeddings` subtree is this one module with its options.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flaxformers.nn.layers import layer_norm

POSITION_KINDS = ("learned", "sinusoidal", "none")


def padding_position_ids(input_ids: jax.Array, padding_idx: int) -> jax.Array:
    """fairseq's positions [..., T]: real tokens count from `padding_idx + 1`, padding keeps `padding_idx`.

    Left or right padding thus never shifts a real token's position.
    """
    real = (input_ids != padding_idx).astype(jnp.int32)
    return jnp.cumsum(real, axis=-1) * real + padding_idx


def sinusoidal_positions(num_positions: int, dim: int) -> np.ndarray:
    """The Transformer's fixed table [P, D]: sin on even features, cos on odd ones, frequency 10000^(-2i/D)."""
    angles = np.arange(num_positions)[:, None] / np.power(10000.0, 2 * (np.arange(dim)[None, :] // 2) / dim)
    table = np.zeros((num_positions, dim), np.float32)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table


class Embeddings(nn.Module):
    """Word (+ position) (+ segment) embeddings, LayerNorm and dropout -> [B, T, E].

    `positions`: "learned" (a `position_embeddings` table), "sinusoidal" (a fixed table, no params) or
    "none" (positions enter in the attention, e.g. rotary). `dropout_first` applies dropout before the
    LayerNorm (BigBird's order); `scale` multiplies the word embeddings (BigBird's `rescale_embeddings`).
    As PyTorch's `nn.Embedding(padding_idx=...)`, the row of `config.pad_token_id` (in the position table too
    with `padding_positions`) is looked up as it is but takes no gradient.
    """

    config: Any
    dtype: jnp.dtype = jnp.float32
    features: int | None = None  # embedding width; hidden_size when None
    positions: str = "learned"
    token_types: bool = True
    dropout_first: bool = False
    scale: float = 1.0
    layer_norm_eps: float | None = None  # config.layer_norm_eps when None
    padding_positions: bool = False  # positions count from pad_token_id + 1 (fairseq), its row takes no gradient

    @nn.compact
    def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array | None, position_ids: jax.Array | None,
                 deterministic: bool = True) -> jax.Array:
        cfg = self.config
        features = self.features or cfg.hidden_size
        init = nn.initializers.normal(cfg.initializer_range)

        pad = getattr(cfg, "pad_token_id", None)

        def lookup(n: int, name: str, ids: jax.Array, padding_idx: int | None = None) -> jax.Array:
            out = nn.Embed(n, features, embedding_init=init, dtype=self.dtype, name=name)(ids.astype("i4"))
            if padding_idx is None:
                return out
            return jnp.where((ids == padding_idx)[..., None], jax.lax.stop_gradient(out), out)

        hidden = lookup(cfg.vocab_size, "word_embeddings", input_ids, pad)  # [B, T, E]
        if self.scale != 1.0:
            hidden = hidden * self.scale
        if self.token_types:
            types = jnp.zeros_like(input_ids) if token_type_ids is None else token_type_ids
            hidden = hidden + lookup(cfg.type_vocab_size, "token_type_embeddings", types)
        if self.positions != "none":
            if position_ids is None:
                position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[-1]), input_ids.shape)
            if self.positions == "learned":
                hidden = hidden + lookup(cfg.max_position_embeddings, "position_embeddings", position_ids,
                                         pad if self.padding_positions else None)
            else:
                fixed = jnp.asarray(sinusoidal_positions(cfg.max_position_embeddings, features))
                hidden = hidden + jnp.take(fixed, position_ids, axis=0).astype(hidden.dtype)
        eps = self.layer_norm_eps if self.layer_norm_eps is not None else cfg.layer_norm_eps
        norm = layer_norm(eps, self.dtype, "LayerNorm")
        dropout = nn.Dropout(cfg.hidden_dropout_prob)
        if self.dropout_first:
            return norm(dropout(hidden, deterministic=deterministic))
        return dropout(norm(hidden), deterministic=deterministic)


__all__ = ["Embeddings", "POSITION_KINDS", "padding_position_ids", "sinusoidal_positions"]

"""LongT5 in Flax: FlaxLongT5Model and FlaxLongT5ForConditionalGeneration, T5 with a long-input encoder.

Its encoder attends locally: the sequence is cut in blocks of `local_radius + 1` tokens and each block
sees itself and its two neighbours (keys farther than the radius masked). Transient-global attention
adds one key per `global_block_size` tokens: their normalised sum, with its own relative position
table. The decoder is T5's. Param paths as 4.57's: `encoder/block/0/layer/0/LocalSelfAttention/...` or
`.../TransientGlobalSelfAttention/{global_relative_attention_bias, global_input_layer_norm}`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.models.longt5.configuration import LongT5Config
from flaxformers.models.t5.modeling import (
    FlaxT5Block,
    FlaxT5ForConditionalGenerationModule,
    FlaxT5LayerCollection,
    FlaxT5Module,
    FlaxT5PreTrainedModel,
    FlaxT5Stack,
    _dense,
    _norm,
)
from flaxformers.nn.position_bias import relative_position_bucket

MASKED = -1e10  # the original implementation's additive mask


# --- blocks of the sequence ----------------------------------------------------------------------
def split_into_blocks(x: jax.Array, block_len: int, axis: int) -> jax.Array:
    """[..., T, ...] -> [..., T / block_len, block_len, ...], zero-padded to a multiple of block_len."""
    pad = -x.shape[axis] % block_len
    if pad:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, pad)
        x = jnp.pad(x, widths)
    return x.reshape(*x.shape[:axis], x.shape[axis] // block_len, block_len, *x.shape[axis + 1:])


def three_blocks(x: jax.Array, block_axis: int, sequence_axis: int) -> jax.Array:
    """Each block joined with its previous and next one along `sequence_axis` (zeros past the ends)."""
    widths = [(0, 0)] * x.ndim
    widths[block_axis] = (1, 1)
    padded = jnp.pad(x, widths)
    n = x.shape[block_axis]
    return jnp.concatenate([jax.lax.slice_in_dim(padded, i, i + n, axis=block_axis) for i in range(3)],
                           axis=sequence_axis)


def local_relative_positions(block_len: int) -> jax.Array:
    """[L, 3L]: key slot minus query slot, queries in the middle block."""
    positions = jnp.arange(3 * block_len)
    return positions[None, :] - positions[block_len:-block_len, None]


def local_attention_mask(padding_mask: jax.Array, block_len: int) -> jax.Array:
    """[B, nb, L, 3L]: both tokens real and at most the local radius apart."""
    blocked = split_into_blocks(padding_mask, block_len, axis=1)  # [B, nb, L]
    keys = three_blocks(blocked, block_axis=1, sequence_axis=2)  # [B, nb, 3L]
    mask = (blocked[..., :, None] > 0) & (keys[..., None, :] > 0)
    return mask & (jnp.abs(local_relative_positions(block_len)) < block_len)


def global_block_ids(padding_mask: jax.Array, global_block_size: int) -> tuple[jax.Array, jax.Array]:
    """Each token's global block (-1 for padding; a last, incomplete block joins the one before) [B, T],
    and which global blocks hold tokens [B, T // global_block_size], as transformers computes them."""
    b, t = padding_mask.shape
    mask = padding_mask.astype(jnp.int32)
    step = jnp.full((b, t), 1.0 / global_block_size, jnp.float32)
    fixed = jnp.cumsum(step, axis=1) - step
    ids = jnp.floor(jnp.where(mask != 0, 1, -1000).astype(jnp.float32) + fixed - 1.0).astype(jnp.int32)
    ids = jnp.maximum(ids, -1) * mask + (mask - 1)
    block_ends = (jnp.arange(t) % global_block_size) == global_block_size - 1
    full_blocks = jnp.sum(block_ends & (ids >= 0), axis=-1, keepdims=True) - 1
    ids = jnp.where(ids < full_blocks, ids, full_blocks)
    segments = jnp.arange(t // global_block_size)[None, :]
    return ids, (segments <= jnp.max(ids, axis=-1, keepdims=True)).astype(jnp.int32)


# --- attention -----------------------------------------------------------------------------------
class FlaxLongT5LocalAttention(nn.Module):
    """Blocked local attention (`transient_global=False`), or with the global aggregates as extra keys."""

    config: LongT5Config
    has_relative_attention_bias: bool = False
    transient_global: bool = False
    dtype: jnp.dtype = jnp.float32

    def _buckets(self, relative_position: jax.Array) -> jax.Array:
        cfg = self.config
        return relative_position_bucket(relative_position, True, cfg.relative_attention_num_buckets,
                                        cfg.relative_attention_max_distance)

    def _table(self, name: str) -> nn.Embed:
        cfg = self.config
        std = cfg.initializer_factor * (cfg.num_heads * cfg.d_kv) ** -0.5
        return nn.Embed(cfg.relative_attention_num_buckets, cfg.num_heads,
                        embedding_init=nn.initializers.normal(std), dtype=self.dtype, name=name)

    def position_bias(self, padding_mask: jax.Array, segments: jax.Array | None, block_ids: jax.Array | None):
        """[B, nb, N, L, 3L (+ G)]: the local table's bias with the local mask (and the side keys' bias)."""
        cfg = self.config
        block_len = cfg.local_radius + 1
        n = cfg.num_heads
        if self.has_relative_attention_bias:
            values = self._table("relative_attention_bias")(self._buckets(local_relative_positions(block_len)))
            bias = jnp.transpose(values, (2, 0, 1))[None, None]  # [1, 1, N, L, 3L]
        else:
            bias = jnp.zeros((1, 1, n, block_len, 3 * block_len), self.dtype)
        local = local_attention_mask(padding_mask, block_len)[:, :, None]  # [B, nb, 1, L, 3L]
        bias = bias + jnp.where(local, 0.0, MASKED)
        if not self.transient_global:
            return bias
        global_positions = jnp.arange(segments.shape[-1])
        side = self._table("global_relative_attention_bias")(
            self._buckets(global_positions[None, None, :] - block_ids[..., None]))  # [B, T, G, N]
        side = jnp.transpose(side, (0, 3, 1, 2))  # [B, N, T, G]
        allowed = padding_mask[:, None, :, None] == segments[:, None, None, :]
        side = side + jnp.where(allowed, 0.0, MASKED)
        side = jnp.swapaxes(split_into_blocks(side, block_len, axis=2), 1, 2)  # [B, nb, N, L, G]
        return jnp.concatenate([jnp.broadcast_to(bias, side.shape[:-1] + bias.shape[-1:]), side], axis=-1)

    @nn.compact
    def __call__(self, hidden, padding_mask, position_bias=None, deterministic=True):
        cfg = self.config
        b, t = hidden.shape[:2]
        n, h = cfg.num_heads, cfg.d_kv
        block_len = cfg.local_radius + 1
        std = cfg.initializer_factor * (n * h) ** -0.5
        q, k, v = (_dense(n * h, s, self.dtype, name) for s, name in ((std * h ** -0.5, "q"), (std, "k"), (std, "v")))
        heads = lambda x: x.reshape(x.shape[0], -1, n, h)  # noqa: E731  [B, T, N, H]
        query = split_into_blocks(heads(q(hidden)), block_len, axis=1)  # [B, nb, L, N, H]
        key = three_blocks(split_into_blocks(heads(k(hidden)), block_len, axis=1), 1, 2)  # [B, nb, 3L, N, H]
        value = three_blocks(split_into_blocks(heads(v(hidden)), block_len, axis=1), 1, 2)
        segments = block_ids = None
        if self.transient_global:
            block_ids, segments = global_block_ids(padding_mask, cfg.global_block_size)
            one_hot = jax.nn.one_hot(jnp.where(block_ids >= 0, block_ids, segments.shape[-1]),
                                     segments.shape[-1] + 1, dtype=hidden.dtype)[..., :-1]  # [B, T, G]
            aggregates = jnp.einsum("btd,btg->bgd", hidden, one_hot)
            aggregates = _norm(cfg, self.dtype, "global_input_layer_norm")(aggregates)  # [B, G, D]
            side = lambda proj: jnp.broadcast_to(  # noqa: E731  [B, nb, G, N, H]
                heads(proj(aggregates))[:, None], (b, key.shape[1], segments.shape[-1], n, h))
            key = jnp.concatenate([key, side(k)], axis=2)
            value = jnp.concatenate([value, side(v)], axis=2)
        if position_bias is None:
            position_bias = self.position_bias(padding_mask, segments, block_ids)
        logits = jnp.einsum("bcqnh,bcknh->bcnqk", query, key, preferred_element_type=jnp.float32)
        weights = jax.nn.softmax(logits + position_bias.astype(jnp.float32), axis=-1)  # [B, nb, N, L, 3L (+ G)]
        if not deterministic and cfg.dropout_rate > 0.0:
            keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - cfg.dropout_rate, weights.shape)
            weights = jnp.where(keep, weights / (1.0 - cfg.dropout_rate), 0.0)
        weights = weights.astype(value.dtype)
        out = jnp.einsum("bcnqk,bcknh->bcqnh", weights, value).reshape(b, -1, n * h)[:, :t]  # [B, T, N * H]
        return _dense(cfg.d_model, std, self.dtype, "o")(out), weights, position_bias


class FlaxLongT5LayerLocalSelfAttention(nn.Module):
    config: LongT5Config
    has_relative_attention_bias: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, attention_mask, position_bias=None, init_cache=False, deterministic=True):
        cfg = self.config
        transient = cfg.encoder_attention_type == "transient-global"
        out, weights, position_bias = FlaxLongT5LocalAttention(
            cfg, self.has_relative_attention_bias, transient, self.dtype,
            name="TransientGlobalSelfAttention" if transient else "LocalSelfAttention",
        )(_norm(cfg, self.dtype, "layer_norm")(hidden), attention_mask, position_bias, deterministic)
        return hidden + nn.Dropout(cfg.dropout_rate)(out, deterministic=deterministic), weights, position_bias


class FlaxLongT5Block(FlaxT5Block):
    def self_attention_layer(self) -> nn.Module:
        if self.causal:  # the decoder is T5's
            return super().self_attention_layer()
        return FlaxLongT5LayerLocalSelfAttention(self.config, self.has_relative_attention_bias, self.dtype, name="0")


class FlaxLongT5LayerCollection(FlaxT5LayerCollection):
    block_cls = FlaxLongT5Block


class FlaxLongT5Stack(FlaxT5Stack):
    collection_cls = FlaxLongT5LayerCollection


class FlaxLongT5Module(FlaxT5Module):
    stack_cls = FlaxLongT5Stack


class FlaxLongT5ForConditionalGenerationModule(FlaxT5ForConditionalGenerationModule):
    stack_cls = FlaxLongT5Stack


class FlaxLongT5PreTrainedModel(FlaxT5PreTrainedModel):
    config_class = LongT5Config


class FlaxLongT5Model(FlaxLongT5PreTrainedModel):
    module_class = FlaxLongT5Module


class FlaxLongT5ForConditionalGeneration(FlaxLongT5PreTrainedModel):
    module_class = FlaxLongT5ForConditionalGenerationModule
    is_seq2seq_lm = True


__all__ = ["FlaxLongT5ForConditionalGeneration", "FlaxLongT5Model", "FlaxLongT5PreTrainedModel"]

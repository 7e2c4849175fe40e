"""BigBird's block-sparse self-attention (ITC): each query block attends to the first and last blocks
(global), its three neighbouring blocks (sliding) and `num_random_blocks` random blocks; the first and
last query blocks attend to everything.

Shapes: B batch, N heads, T = nb * bs tokens in nb blocks of bs, H head dim, S = 5 + r key slots of a
middle query block (first, previous, own, next, last, then r random blocks).

As transformers computes it: padded keys get -10000 added to their logits; a middle block's sliding
keys (except for the second and second-last blocks) and its random keys also get it where the query is
padding; outputs at padded queries are zero. The random blocks are all block 0 in eval mode (as in
transformers, whose draw is then deterministic) and drawn from the `indices` PRNG stream in training.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

PENALTY = -10000.0  # transformers' additive mask value in the block-sparse path


def min_tokens(block_size: int, num_random_blocks: int) -> int:
    """Sequences of at most this many tokens use full attention (transformers switches there too)."""
    return (5 + 2 * num_random_blocks) * block_size


def draw_random_blocks(rng: jax.Array | None, num_heads: int, num_blocks: int, r: int) -> jax.Array:
    """Random key blocks [N, nb - 2, r] of the middle query blocks: zeros without `rng` (eval), else r
    distinct blocks per head and row, none of them global or sliding."""
    rows = num_blocks - 2
    if rng is None:
        return jnp.zeros((num_heads, rows, r), jnp.int32)
    block = jnp.arange(1, num_blocks - 1)[:, None]  # [nb - 2, 1] the query block of each row
    keys = jnp.arange(num_blocks)[None, :]  # [1, nb]
    excluded = (keys == 0) | (keys == num_blocks - 1) | (jnp.abs(keys - block) <= 1)  # [nb - 2, nb]
    scores = jnp.where(excluded, -1.0, jax.random.uniform(rng, (num_heads, rows, num_blocks)))
    return jax.lax.top_k(scores, r)[1].astype(jnp.int32)


def _slot_tables(num_blocks: int, rand: jax.Array) -> tuple[jax.Array, np.ndarray, np.ndarray]:
    """Key block of every slot [N, nb - 2, S], which slots count [nb - 2, S], and which are masked by the
    query's padding too [nb - 2, S]."""
    rows, r = num_blocks - 2, rand.shape[-1]
    block = np.arange(1, num_blocks - 1)[:, None]
    fixed = np.concatenate([np.zeros_like(block), block - 1, block, block + 1, np.full_like(block, num_blocks - 1)],
                           axis=1)  # [nb - 2, 5]
    index = jnp.concatenate([jnp.broadcast_to(jnp.asarray(fixed), (rand.shape[0], rows, 5)), rand], axis=-1)
    valid = np.ones((rows, 5 + r), bool)
    valid[0, 1] = False  # the second block's previous block is the first (global) block
    valid[-1, 4] = False  # the second-last block's next block is the last (global) block
    from_masked = np.zeros((rows, 5 + r), bool)
    from_masked[1:-1, 1:4] = True  # transformers' band mask: middle rows' sliding keys
    from_masked[:, 5:] = True  # random keys
    return index.astype(jnp.int32), valid, from_masked


def block_sparse_attention(query: jax.Array, key: jax.Array, value: jax.Array, mask: jax.Array, block_size: int,
                           rand: jax.Array, output_attentions: bool) -> tuple[jax.Array, jax.Array | None]:
    """query/key/value [B, T, N, H], mask [B, T] -> output [B, T, N, H] and, if asked, weights [B, N, T, T]."""
    b, t, n, h = query.shape
    nb, bs = t // block_size, block_size
    scale = 1.0 / math.sqrt(h)
    blocks = lambda x: x.reshape(b, nb, bs, n, h).transpose(0, 3, 1, 2, 4)  # noqa: E731  [B, N, nb, bs, H]
    qb, kb, vb = blocks(query), blocks(key), blocks(value)
    to_mask = mask.astype(jnp.float32)  # [B, T]
    to_blocks = to_mask.reshape(b, nb, bs)

    # First and last query blocks: every key.
    ends = jnp.stack([qb[:, :, 0], qb[:, :, -1]], axis=2)  # [B, N, 2, bs, H]
    end_logits = jnp.einsum("bnlqh,bknh->bnlqk", ends, key) * scale + (1.0 - to_mask)[:, None, None, None] * PENALTY
    end_weights = jax.nn.softmax(end_logits, axis=-1)  # [B, N, 2, bs, T]
    end_out = jnp.einsum("bnlqk,bknh->bnlqh", end_weights, value)

    # Middle query blocks: their S key slots.
    index, valid, from_masked = _slot_tables(nb, rand)  # [N, nb-2, S]
    gather = jax.vmap(lambda x, i: x[:, i], in_axes=(1, 0), out_axes=1)  # per head: [B, nb, ...] -> [B, nb-2, S, ...]
    kg, vg = gather(kb, index), gather(vb, index)  # [B, N, nb-2, S, bs, H]
    key_mask = jax.vmap(lambda i: to_blocks[:, i], out_axes=1)(index)  # [B, N, nb-2, S, bs]
    query_mask = to_blocks[:, 1:-1]  # [B, nb-2, bs]
    keep = key_mask[:, :, :, None] * jnp.where(jnp.asarray(from_masked)[None, None, :, None, :, None],
                                               query_mask[:, None, :, :, None, None], 1.0)  # [B, N, nb-2, bs, S, bs]
    logits = jnp.einsum("bnmqh,bnmskh->bnmqsk", qb[:, :, 1:-1], kg) * scale + (1.0 - keep) * PENALTY
    logits = jnp.where(jnp.asarray(valid)[None, None, :, None, :, None], logits, -jnp.inf)
    weights = jax.nn.softmax(logits.reshape(*logits.shape[:4], -1), axis=-1).reshape(logits.shape)
    middle_out = jnp.einsum("bnmqsk,bnmskh->bnmqh", weights, vg)

    out = jnp.concatenate([end_out[:, :, :1], middle_out, end_out[:, :, 1:]], axis=2)  # [B, N, nb, bs, H]
    out = out.reshape(b, n, t, h).transpose(0, 2, 1, 3) * to_mask[:, :, None, None]  # [B, T, N, H]
    if not output_attentions:
        return out, None
    return out, _dense_weights(end_weights, weights, index, valid, nb)


def _dense_weights(end_weights, weights, index, valid, nb):
    """The [B, N, T, T] weights transformers reports: zero off the pattern; where a random slot repeats a
    key block, the random slot's weight (transformers writes random blocks last)."""
    b, n, rows, bs, s, _ = weights.shape
    onehot = (index[..., None] == jnp.arange(nb)) & jnp.asarray(valid)[None, :, :, None]  # [N, nb-2, S, nb]
    is_random = jnp.arange(s) >= 5
    fixed = jnp.einsum("bnmqsk,nmsj->bnmqjk", weights, (onehot & ~is_random[:, None]).astype(weights.dtype))
    rand_sum = jnp.einsum("bnmqsk,nmsj->bnmqjk", weights, (onehot & is_random[:, None]).astype(weights.dtype))
    rand_count = jnp.sum(onehot & is_random[:, None], axis=2)[None, :, :, None, :, None]  # [1, N, nb-2, 1, nb, 1]
    middle = jnp.where(rand_count > 0, rand_sum / jnp.maximum(rand_count, 1), fixed)  # [B, N, nb-2, bs, nb, bs]
    middle = middle.reshape(b, n, rows * bs, nb * bs)
    return jnp.concatenate([end_weights[:, :, 0], middle, end_weights[:, :, 1]], axis=2)


__all__ = ["block_sparse_attention", "draw_random_blocks", "min_tokens"]

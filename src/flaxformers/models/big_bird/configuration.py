"""BigBirdConfig: BERT's keys plus the block-sparse attention's (`attention_type`, `block_size`,
`num_random_blocks`), `use_bias` and `rescale_embeddings`."""

from __future__ import annotations

from typing import Any

from flaxformers.models.bert.configuration import BertConfig

ATTENTION_TYPES = ("block_sparse", "original_full")


class BigBirdConfig(BertConfig):
    model_type = "big_bird"

    def __init__(self, vocab_size: int = 50358, hidden_act: str = "gelu_new", max_position_embeddings: int = 4096,
                 pad_token_id: int = 0, bos_token_id: int = 1, eos_token_id: int = 2, sep_token_id: int = 66,
                 attention_type: str = "block_sparse", use_bias: bool = True, rescale_embeddings: bool = False,
                 block_size: int = 64, num_random_blocks: int = 3, **kwargs: Any):
        self.attention_type = attention_type
        self.use_bias = use_bias
        self.rescale_embeddings = rescale_embeddings
        self.block_size = block_size
        self.num_random_blocks = num_random_blocks
        super().__init__(vocab_size=vocab_size, hidden_act=hidden_act, max_position_embeddings=max_position_embeddings,
                         pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         sep_token_id=sep_token_id, **kwargs)
        self._check(attention_type in ATTENTION_TYPES,
                    f"attention_type={attention_type!r}; expected one of {ATTENTION_TYPES}.")
        for name in ("block_size", "num_random_blocks"):
            value = getattr(self, name)
            self._check(isinstance(value, int) and value > 0, f"{name}={value!r} must be a positive integer.")

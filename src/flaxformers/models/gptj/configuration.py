"""GPTJConfig: the keys of transformers' GPT-J `config.json`."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class GPTJConfig(PretrainedConfig):
    model_type = "gptj"
    attribute_map = {
        "max_position_embeddings": "n_positions",
        "hidden_size": "n_embd",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
    }

    def __init__(
        self,
        vocab_size: int = 50400,
        n_positions: int = 2048,
        n_embd: int = 4096,
        n_layer: int = 28,
        n_head: int = 16,
        rotary_dim: int | None = 64,
        n_inner: int | None = None,
        activation_function: str = "gelu_new",
        resid_pdrop: float = 0.0,
        embd_pdrop: float = 0.0,
        attn_pdrop: float = 0.0,
        layer_norm_epsilon: float = 1e-5,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        bos_token_id: int = 50256,
        eos_token_id: int = 50256,
        tie_word_embeddings: bool = False,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.n_positions = n_positions
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.rotary_dim = rotary_dim
        self.n_inner = n_inner
        self.activation_function = activation_function
        self.resid_pdrop = resid_pdrop
        self.embd_pdrop = embd_pdrop
        self.attn_pdrop = attn_pdrop
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, use_cache=use_cache,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)
        self._check(min(vocab_size, n_positions, n_embd, n_layer, n_head) > 0,
                    "vocab_size, n_positions, n_embd, n_layer and n_head must be positive.")
        self._check(n_embd % n_head == 0, f"n_embd={n_embd} must be divisible by n_head={n_head}.")
        head_dim = n_embd // n_head
        self._check(rotary_dim is None or (0 < rotary_dim <= head_dim and rotary_dim % 2 == 0),
                    f"rotary_dim={rotary_dim} must be an even number of dims of a head (head_dim={head_dim}), "
                    "or None to rotate the whole head.")
        self._check_activation("activation_function", activation_function)

    @property
    def rotated_dims(self) -> int:
        """How many leading dims of each head rotate (the whole head when rotary_dim is None)."""
        return self.rotary_dim if self.rotary_dim is not None else self.n_embd // self.n_head

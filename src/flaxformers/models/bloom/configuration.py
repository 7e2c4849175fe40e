"""BloomConfig: the keys of transformers' BLOOM `config.json`."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class BloomConfig(PretrainedConfig):
    model_type = "bloom"
    attribute_map = {
        "num_hidden_layers": "n_layer",
        "num_attention_heads": "n_head",
        "n_embed": "hidden_size",  # the legacy name of hidden_size in old BLOOM configs
    }

    def __init__(
        self,
        vocab_size: int = 250880,
        hidden_size: int = 64,
        n_layer: int = 2,
        n_head: int = 8,
        layer_norm_epsilon: float = 1e-5,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        apply_residual_connection_post_layernorm: bool = False,
        hidden_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        pretraining_tp: int = 1,  # Megatron's tensor-parallel rank: kept for round trips, no effect here
        slow_but_exact: bool = False,  # ditto: the sliced matmuls it selects are equal up to rounding
        **kwargs: Any,
    ):
        n_embed = kwargs.pop("n_embed", None)
        # Aliases given as keywords (num_hidden_layers=..., num_attention_heads=...) win, as in transformers.
        n_layer = kwargs.pop("num_hidden_layers", n_layer)
        n_head = kwargs.pop("num_attention_heads", n_head)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size if n_embed is None else n_embed
        self.n_layer = n_layer
        self.n_head = n_head
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.apply_residual_connection_post_layernorm = apply_residual_connection_post_layernorm
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.pretraining_tp = pretraining_tp
        self.slow_but_exact = slow_but_exact
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, use_cache=use_cache, **kwargs)
        self._validate()

    def _validate(self) -> None:
        for name in ("vocab_size", "hidden_size", "n_layer", "n_head"):
            value = getattr(self, name)
            self._check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                        f"{name}={value!r} must be a positive integer.")
        d, n = self.hidden_size, self.n_head
        self._check(d % n == 0, f"hidden_size={d} must be divisible by n_head={n}, since head_dim = "
                                "hidden_size / n_head; change n_head or hidden_size.")
        self._check(self.layer_norm_epsilon > 0, f"layer_norm_epsilon={self.layer_norm_epsilon!r} must be > 0.")
        for name in ("hidden_dropout", "attention_dropout"):
            value = getattr(self, name)
            self._check(0.0 <= value < 1.0, f"{name}={value!r} must be in [0, 1).")
        self._check(isinstance(self.pretraining_tp, int) and self.pretraining_tp >= 1,
                    f"pretraining_tp={self.pretraining_tp!r} must be an integer >= 1.")


"""OPTConfig: the keys of transformers' OPT `config.json`."""

from __future__ import annotations

from typing import Any

from flaxformers.configuration_utils import PretrainedConfig


class OPTConfig(PretrainedConfig):
    model_type = "opt"

    def __init__(
        self,
        vocab_size: int = 50272,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        ffn_dim: int = 3072,
        max_position_embeddings: int = 2048,
        do_layer_norm_before: bool = True,
        _remove_final_layer_norm: bool = False,
        word_embed_proj_dim: int | None = None,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        num_attention_heads: int = 12,
        activation_function: str = "relu",
        layerdrop: float = 0.0,
        init_std: float = 0.02,
        use_cache: bool = True,
        pad_token_id: int = 1,
        bos_token_id: int = 2,
        eos_token_id: int = 2,
        enable_bias: bool = True,
        layer_norm_elementwise_affine: bool = True,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.ffn_dim = ffn_dim
        self.max_position_embeddings = max_position_embeddings
        self.do_layer_norm_before = do_layer_norm_before
        # Old checkpoints fine-tuned before transformers 4.20.1 have no final norm (metaseq#164).
        self._remove_final_layer_norm = _remove_final_layer_norm
        self.word_embed_proj_dim = word_embed_proj_dim if word_embed_proj_dim is not None else hidden_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.num_attention_heads = num_attention_heads
        self.activation_function = activation_function
        self.layerdrop = layerdrop  # training-time layer dropping: kept for round trips, not applied
        self.init_std = init_std
        self.enable_bias = enable_bias
        self.layer_norm_elementwise_affine = layer_norm_elementwise_affine
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         use_cache=use_cache, **kwargs)
        self._check(min(vocab_size, hidden_size, num_hidden_layers, ffn_dim, max_position_embeddings,
                        num_attention_heads, self.word_embed_proj_dim) > 0,
                    "vocab_size, hidden_size, num_hidden_layers, ffn_dim, max_position_embeddings, "
                    "num_attention_heads and word_embed_proj_dim must be positive.")
        self._check(hidden_size % num_attention_heads == 0,
                    f"hidden_size={hidden_size} must be divisible by num_attention_heads={num_attention_heads}.")
        self._check_activation("activation_function", activation_function)

    @property
    def final_layer_norm(self) -> bool:
        """Whether the decoder ends in a LayerNorm: pre-norm models have one, unless an old checkpoint removed it."""
        return self.do_layer_norm_before and not self._remove_final_layer_norm

    def to_dict(self) -> dict[str, Any]:
        # transformers writes this underscored key; the generic to_dict leaves private names out.
        return dict(sorted({**super().to_dict(), "_remove_final_layer_norm": self._remove_final_layer_norm}.items()))

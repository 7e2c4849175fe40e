"""T5Config and MT5Config: the keys of transformers' T5 and mT5 `config.json`."""

from __future__ import annotations

from typing import Any, ClassVar

from flaxformers.configuration_utils import PretrainedConfig


class T5Config(PretrainedConfig):
    model_type = "t5"
    attribute_map = {"hidden_size": "d_model", "num_attention_heads": "num_heads", "num_hidden_layers": "num_layers",
                     "head_dim": "d_kv"}
    # transformers 4.57's defaults (MT5Config and LongT5Config override some)
    defaults: ClassVar[dict[str, Any]] = {
        "vocab_size": 32128, "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6, "num_decoder_layers": None,
        "num_heads": 8, "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
        "dropout_rate": 0.1, "layer_norm_epsilon": 1e-6, "initializer_factor": 1.0, "feed_forward_proj": "relu",
        "is_encoder_decoder": True, "use_cache": True, "pad_token_id": 0, "eos_token_id": 1,
        "classifier_dropout": 0.0,
    }

    def __init__(self, **kwargs: Any):
        kwargs = {**self.defaults, **kwargs}
        for derived in ("dense_act_fn", "is_gated_act"):  # computed from feed_forward_proj below
            kwargs.pop(derived, None)
        super().__init__(**kwargs)
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        act = self.feed_forward_proj.split("-")
        self._check(len(act) == 1 or (len(act) == 2 and act[0] == "gated"),
                    f"feed_forward_proj={self.feed_forward_proj!r} must be 'gated-{{ACT}}' or '{{ACT}}', e.g. "
                    "'gated-gelu' or 'relu'.")
        self.dense_act_fn = "gelu_new" if self.feed_forward_proj == "gated-gelu" else act[-1]
        self.is_gated_act = act[0] == "gated"
        self._check_activation("feed_forward_proj", self.dense_act_fn)
        self._check(min(self.d_model, self.d_kv, self.d_ff, self.num_layers, self.num_heads) > 0,
                    "d_model, d_kv, d_ff, num_layers and num_heads must be positive.")
        # Whether the decoder output is scaled by d_model ** -0.5 before the vocabulary projection (original
        # T5). transformers 5 writes it; older config.json files say it with `tie_word_embeddings`.
        if getattr(self, "scale_decoder_outputs", None) is None:
            self.scale_decoder_outputs = self.default_scale_decoder_outputs()

    def default_scale_decoder_outputs(self) -> bool:
        return bool(self.tie_word_embeddings)


class MT5Config(T5Config):
    model_type = "mt5"
    defaults = {**T5Config.defaults, "vocab_size": 250112, "d_ff": 1024, "num_layers": 8, "num_heads": 6,
                "feed_forward_proj": "gated-gelu", "tokenizer_class": "T5Tokenizer", "tie_word_embeddings": False,
                "decoder_start_token_id": 0}

    def default_scale_decoder_outputs(self) -> bool:
        return False  # transformers 5 never scales mT5's decoder output

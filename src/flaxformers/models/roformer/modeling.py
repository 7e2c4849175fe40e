"""RoFormer in Flax: the base model and the five heads of transformers 4.x Flax, with its param names.

RoFormer is BERT's encoder without position embeddings or pooler: queries and keys (and values with
`rotary_value`) are rotated by their position in the interleaved layout (`nn/rope.py`). Its
`cls/predictions` masked-LM head is BERT's; multiple choice reads the last token.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import numpy as np

from flaxformers.encoder_models import FlaxEncoderPreTrainedModel
from flaxformers.models.bert.modeling import FlaxBertOnlyMLMHead
from flaxformers.models.roformer.configuration import RoFormerConfig
from flaxformers.nn import heads
from flaxformers.nn.encoder import EncoderLayout, EncoderModel, EncoderSelfAttention
from flaxformers.nn.rope import apply_rope, rope_cos_sin
from flaxformers.nn.rope_config import RopeSpec


class FlaxRoFormerSelfAttention(EncoderSelfAttention):
    def project(self, hidden, source, position_ids):
        query, key, value = super().project(hidden, source, position_ids)  # [B, T, N, H]
        rope = RopeSpec(theta=10000.0, rotary_dim=query.shape[-1], interleaved=True)
        cos, sin = rope_cos_sin(rope, position_ids, query.dtype)  # [B, T, H]
        query, key = apply_rope(query, cos, sin, rope), apply_rope(key, cos, sin, rope)
        if self.config.rotary_value:
            value = apply_rope(value, cos, sin, rope)
        return query, key, value


class FlaxRoFormerModule(EncoderModel):
    layout: ClassVar[EncoderLayout] = EncoderLayout(positions="none", pooler=None,
                                                    self_attention=FlaxRoFormerSelfAttention)


class _RoFormer:
    base_module: ClassVar = FlaxRoFormerModule
    base_name: ClassVar[str] = "roformer"


class FlaxRoFormerForMaskedLMModule(_RoFormer, heads.MaskedLMModule):
    def setup_head(self):
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype, self.config.embedding_size)

    def lm_logits(self, hidden):
        return self.cls(hidden, self.shared_embedding())


class FlaxRoFormerForSequenceClassificationModule(_RoFormer, heads.SequenceClassificationModule):
    classifier_act: ClassVar[str] = "hidden_act"


class FlaxRoFormerForMultipleChoiceModule(_RoFormer, heads.MultipleChoiceModule):
    def summary(self, outputs, deterministic):
        return self.dropout(outputs.last_hidden_state[:, -1], deterministic=deterministic)  # the last token


class FlaxRoFormerForTokenClassificationModule(_RoFormer, heads.TokenClassificationModule):
    pass


class FlaxRoFormerForQuestionAnsweringModule(_RoFormer, heads.QuestionAnsweringModule):
    pass


def rotary_table(num_positions: int, dim: int) -> np.ndarray:
    """transformers' `embed_positions` weight [P, H]: sin of pairs' angles in the first half, cos in the second."""
    angles = np.arange(num_positions)[:, None] / np.power(10000.0, 2 * (np.arange(dim)[None, :] // 2) / dim)
    return np.concatenate([np.sin(angles[:, 0::2]), np.cos(angles[:, 1::2])], axis=1).astype(np.float32)


# --- the model classes ---------------------------------------------------------------------------
class FlaxRoFormerPreTrainedModel(FlaxEncoderPreTrainedModel):
    config_class = RoFormerConfig
    base_model_prefix = "roformer"
    _keys_to_ignore_on_load_unexpected = FlaxEncoderPreTrainedModel._keys_to_ignore_on_load_unexpected + (
        r"cls\.predictions\.decoder\.bias$", r"encoder\.embed_positions\.weight$")
    _tied_weights_keys = {"cls.predictions.decoder.weight": "roformer.embeddings.word_embeddings.weight"}

    def constant_tensors(self) -> dict[str, np.ndarray]:
        cfg = self.config
        prefix = "" if self.module_class is FlaxRoFormerModule else "roformer."
        table = rotary_table(cfg.max_position_embeddings, cfg.hidden_size // cfg.num_attention_heads)
        return {f"{prefix}encoder.embed_positions.weight": table}

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        head_mask=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        return self._encoder_call(
            input_ids, attention_mask, token_type_ids, head_mask=head_mask, params=params, dropout_rng=dropout_rng,
            train=train, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=return_dict,
        )


class FlaxRoFormerModel(FlaxRoFormerPreTrainedModel):
    module_class = FlaxRoFormerModule


class FlaxRoFormerForMaskedLM(FlaxRoFormerPreTrainedModel):
    module_class = FlaxRoFormerForMaskedLMModule


class FlaxRoFormerForSequenceClassification(FlaxRoFormerPreTrainedModel):
    module_class = FlaxRoFormerForSequenceClassificationModule


class FlaxRoFormerForMultipleChoice(FlaxRoFormerPreTrainedModel):
    module_class = FlaxRoFormerForMultipleChoiceModule


class FlaxRoFormerForTokenClassification(FlaxRoFormerPreTrainedModel):
    module_class = FlaxRoFormerForTokenClassificationModule


class FlaxRoFormerForQuestionAnswering(FlaxRoFormerPreTrainedModel):
    module_class = FlaxRoFormerForQuestionAnsweringModule


__all__ = [
    "FlaxRoFormerForMaskedLM",
    "FlaxRoFormerForMultipleChoice",
    "FlaxRoFormerForQuestionAnswering",
    "FlaxRoFormerForSequenceClassification",
    "FlaxRoFormerForTokenClassification",
    "FlaxRoFormerModel",
    "FlaxRoFormerPreTrainedModel",
]

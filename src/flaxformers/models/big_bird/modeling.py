"""BigBird in Flax: the base model and the seven heads of transformers 4.x Flax, with its param names.

BigBird is BERT's encoder (under `bert/`) with what is its own: block-sparse self-attention
(`attention.py`) when `attention_type="block_sparse"` and the sequence is longer than
(5 + 2 * num_random_blocks) * block_size tokens (shorter ones, decoders and cross-attention use full
attention, as transformers switches to it), inputs padded to a multiple of `block_size` on the way in
and the last hidden state cut back on the way out; dropout before the embeddings' LayerNorm, optional
`rescale_embeddings`, optional query/key/value biases (`use_bias`), a bare `pooler` dense layer, and a
question-answering head that masks the question's logits.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.encoder_models import FlaxEncoderPreTrainedModel
from flaxformers.models.bert.modeling import FlaxBertOnlyMLMHead, FlaxBertPreTrainingHeads
from flaxformers.models.big_bird.attention import block_sparse_attention, draw_random_blocks, min_tokens
from flaxformers.models.big_bird.configuration import BigBirdConfig
from flaxformers.nn import heads
from flaxformers.nn.encoder import (
    EncoderLayout,
    EncoderModel,
    EncoderSelfAttention,
    Intermediate,
    ResidualOutput,
    dense,
)
from flaxformers.outputs import output_class

FlaxBigBirdForPreTrainingOutput = output_class(
    "FlaxBigBirdForPreTrainingOutput", "prediction_logits", "seq_relationship_logits", "hidden_states", "attentions"
)
FlaxBigBirdForQuestionAnsweringModelOutput = output_class(
    "FlaxBigBirdForQuestionAnsweringModelOutput", "start_logits", "end_logits", "pooled_output", "hidden_states",
    "attentions"
)


def uses_block_sparse(config: BigBirdConfig, seq_len: int) -> bool:
    return config.attention_type == "block_sparse" and seq_len > min_tokens(config.block_size,
                                                                             config.num_random_blocks)


class FlaxBigBirdSelfAttention(EncoderSelfAttention):
    def attend(self, query, key, value, attention_mask, layer_head_mask, cross, init_cache, deterministic):
        cfg = self.config
        if cross or self.causal or not uses_block_sparse(cfg, query.shape[1]):
            return super().attend(query, key, value, attention_mask, layer_head_mask, cross, init_cache, deterministic)
        rng = None if deterministic else self.make_rng("indices")
        rand = draw_random_blocks(rng, cfg.num_attention_heads, query.shape[1] // cfg.block_size,
                                  cfg.num_random_blocks)
        return block_sparse_attention(query, key, value, attention_mask, cfg.block_size, rand, output_attentions=True)


class FlaxBigBirdModule(EncoderModel):
    layout: ClassVar[EncoderLayout] = EncoderLayout(embedding_dropout_first=True, pooler="dense",
                                                    self_attention=FlaxBigBirdSelfAttention)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache=False, deterministic=True,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        cfg = self.config
        seq_len = input_ids.shape[-1]
        pad = -seq_len % cfg.block_size if uses_block_sparse(cfg, seq_len) and not cfg.is_decoder else 0
        if attention_mask is None:
            attention_mask = jnp.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(seq_len), input_ids.shape)
        if pad:  # to whole blocks: padding tokens at pad_token_id's id and position, masked
            widen = lambda x, v: jnp.pad(x, ((0, 0), (0, pad)), constant_values=v)  # noqa: E731
            input_ids, position_ids = widen(input_ids, cfg.pad_token_id), widen(position_ids, cfg.pad_token_id)
            attention_mask, token_type_ids = widen(attention_mask, 0), widen(token_type_ids, 0)
        out = super().__call__(input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                               encoder_hidden_states, encoder_attention_mask, init_cache, deterministic,
                               output_attentions, output_hidden_states, return_dict=True)
        if pad:
            out.last_hidden_state = out.last_hidden_state[:, :seq_len]
        return out if return_dict else out.to_tuple()


class _BigBird:
    base_module: ClassVar = FlaxBigBirdModule
    base_name: ClassVar[str] = "bert"


class _BigBirdLM(_BigBird):
    def setup_head(self):
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype)

    def lm_logits(self, hidden):
        return self.cls(hidden, self.shared_embedding())


class FlaxBigBirdForPreTrainingModule(_BigBird, heads.EncoderHeadModule):
    pooling: ClassVar[bool] = True

    def setup_head(self):
        self.cls = FlaxBertPreTrainingHeads(self.config, self.dtype)

    def head(self, outputs, deterministic):
        logits, seq_logits = self.cls(outputs.last_hidden_state, outputs.pooler_output, self.shared_embedding())
        return FlaxBigBirdForPreTrainingOutput(prediction_logits=logits, seq_relationship_logits=seq_logits,
                                               hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBigBirdForMaskedLMModule(_BigBirdLM, heads.MaskedLMModule):
    pass


class FlaxBigBirdForCausalLMModule(_BigBirdLM, heads.CausalLMModule):
    pass


class FlaxBigBirdForSequenceClassificationModule(_BigBird, heads.SequenceClassificationModule):
    classifier_act: ClassVar[str] = "hidden_act"


class FlaxBigBirdForMultipleChoiceModule(_BigBird, heads.MultipleChoiceModule):
    pass


class FlaxBigBirdForTokenClassificationModule(_BigBird, heads.TokenClassificationModule):
    pass


class FlaxBigBirdForQuestionAnsweringHead(nn.Module):
    """`qa_classifier`: dropout, a feed-forward block (`intermediate`, `output`), `qa_outputs`."""

    config: BigBirdConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic=True):
        cfg = self.config
        out = nn.Dropout(cfg.hidden_dropout_prob)(hidden, deterministic=deterministic)
        out = Intermediate(cfg, dtype=self.dtype, name="intermediate")(out)
        out = ResidualOutput(cfg, dtype=self.dtype, name="output")(out, hidden, deterministic)
        return dense(cfg, cfg.num_labels, self.dtype, "qa_outputs")(out)  # [B, T, 2]


class FlaxBigBirdForQuestionAnsweringModule(_BigBird, heads.EncoderHeadModule):
    """Span logits with the question's tokens (`logits_mask` [B, T, 1]) pushed down by 1e6."""

    def setup_head(self):
        self.qa_classifier = FlaxBigBirdForQuestionAnsweringHead(self.config, self.dtype)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 logits_mask=None, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False, return_dict: bool = True):
        outputs = self.encode(input_ids, attention_mask, token_type_ids, position_ids, head_mask, deterministic,
                              output_attentions, output_hidden_states)
        logits = self.qa_classifier(outputs.last_hidden_state, deterministic)
        if logits_mask is not None:
            logits = logits - logits_mask * 1e6
        start, end = heads.split_span_logits(logits, self.config.num_labels)
        out = FlaxBigBirdForQuestionAnsweringModelOutput(start_logits=start, end_logits=end,
                                                         pooled_output=outputs.pooler_output,
                                                         hidden_states=outputs.hidden_states,
                                                         attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()


# --- the model classes ---------------------------------------------------------------------------
class FlaxBigBirdPreTrainedModel(FlaxEncoderPreTrainedModel):
    config_class = BigBirdConfig
    base_model_prefix = "bert"
    _keys_to_ignore_on_load_unexpected = FlaxEncoderPreTrainedModel._keys_to_ignore_on_load_unexpected + (
        r"cls\.predictions\.decoder\.bias$", r"pooler")
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        indices_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: dict | None = None,
    ):
        return self._encoder_call(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, encoder_hidden_states,
            encoder_attention_mask, params=params, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
            past_key_values=past_key_values, rngs=self._indices_rngs(train, indices_rng, dropout_rng),
        )

    def _indices_rngs(self, train: bool, indices_rng: jax.Array | None, dropout_rng: jax.Array | None) -> dict:
        """The `indices` stream that draws random blocks in training: `indices_rng`, else one split from
        `dropout_rng`."""
        if not train or self.config.attention_type != "block_sparse":
            return {}
        if indices_rng is None and dropout_rng is None:
            raise ValueError("train=True with block-sparse attention draws random blocks: pass indices_rng= (or "
                             "dropout_rng=).")
        return {"indices": indices_rng if indices_rng is not None else jax.random.fold_in(dropout_rng, 1)}


class FlaxBigBirdModel(FlaxBigBirdPreTrainedModel):
    module_class = FlaxBigBirdModule
    _takes_encoder_states = True


class FlaxBigBirdForPreTraining(FlaxBigBirdPreTrainedModel):
    module_class = FlaxBigBirdForPreTrainingModule


class FlaxBigBirdForMaskedLM(FlaxBigBirdPreTrainedModel):
    module_class = FlaxBigBirdForMaskedLMModule


class FlaxBigBirdForSequenceClassification(FlaxBigBirdPreTrainedModel):
    module_class = FlaxBigBirdForSequenceClassificationModule


class FlaxBigBirdForMultipleChoice(FlaxBigBirdPreTrainedModel):
    module_class = FlaxBigBirdForMultipleChoiceModule


class FlaxBigBirdForTokenClassification(FlaxBigBirdPreTrainedModel):
    module_class = FlaxBigBirdForTokenClassificationModule


class FlaxBigBirdForQuestionAnswering(FlaxBigBirdPreTrainedModel):
    module_class = FlaxBigBirdForQuestionAnsweringModule

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        question_lengths=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        indices_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        """`question_lengths` [B, 1] (default: up to the first `sep_token_id`) mark the question, whose span
        logits are masked; without segment ids, the question is segment 0 and the context segment 1."""
        input_ids = jnp.asarray(input_ids)
        if question_lengths is None:
            question_lengths = jnp.argmax(input_ids == self.config.sep_token_id, axis=-1)[:, None] + 1
        question = jnp.arange(input_ids.shape[1])[None, :] < jnp.asarray(question_lengths)  # [B, T]
        if token_type_ids is None:
            token_type_ids = (~question).astype("i4")
        logits_mask = question.at[:, 0].set(False)[:, :, None].astype(jnp.float32)  # [B, T, 1]
        return self._encoder_call(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, params=params, dropout_rng=dropout_rng,
            train=train, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=return_dict, rngs=self._indices_rngs(train, indices_rng, dropout_rng), logits_mask=logits_mask,
        )


class FlaxBigBirdForCausalLM(FlaxBigBirdPreTrainedModel):
    module_class = FlaxBigBirdForCausalLMModule
    _takes_encoder_states = True
    is_causal_lm = True


__all__ = [
    "FlaxBigBirdForCausalLM",
    "FlaxBigBirdForMaskedLM",
    "FlaxBigBirdForMultipleChoice",
    "FlaxBigBirdForPreTraining",
    "FlaxBigBirdForQuestionAnswering",
    "FlaxBigBirdForSequenceClassification",
    "FlaxBigBirdForTokenClassification",
    "FlaxBigBirdModel",
    "FlaxBigBirdPreTrainedModel",
]

"""BERT in Flax: the base model and the eight heads of transformers 4.x Flax, with its param names.

BERT is the shared encoder (`nn/encoder.py`) and heads (`nn/heads.py`) as they are. What is BERT's
own: the `cls` heads of pre-training (masked LM tied to the word embeddings, and next-sentence
prediction on the pooled [CLS]).
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp

from flaxformers.encoder_models import FlaxEncoderPreTrainedModel
from flaxformers.models.bert.configuration import BertConfig
from flaxformers.nn import heads
from flaxformers.nn.encoder import EncoderModel, dense
from flaxformers.outputs import FlaxNextSentencePredictorOutput, output_class

FlaxBertForPreTrainingOutput = output_class(
    "FlaxBertForPreTrainingOutput", "prediction_logits", "seq_relationship_logits", "hidden_states", "attentions"
)


class FlaxBertModule(EncoderModel):
    pass


class FlaxBertOnlyMLMHead(nn.Module):
    """`cls/predictions`: BERT's masked-LM head (`features`: its transform's width, hidden_size when None)."""

    config: BertConfig
    dtype: jnp.dtype = jnp.float32
    features: int | None = None

    @nn.compact
    def __call__(self, hidden, shared_embedding=None):
        return heads.PredictionHead(self.config, self.dtype, self.features, name="predictions")(hidden, shared_embedding)


class FlaxBertPreTrainingHeads(nn.Module):
    """`cls/predictions` and `cls/seq_relationship` (next-sentence logits [B, 2] from the pooled [CLS])."""

    config: BertConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, pooled=None, shared_embedding=None):
        logits = None if hidden is None else heads.PredictionHead(self.config, self.dtype, name="predictions")(
            hidden, shared_embedding)
        seq_logits = None if pooled is None else dense(self.config, 2, self.dtype, "seq_relationship")(pooled)
        return logits, seq_logits


class _Bert:
    base_module: ClassVar = FlaxBertModule
    base_name: ClassVar[str] = "bert"


class _BertLM(_Bert):
    def setup_head(self):
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype)

    def lm_logits(self, hidden):
        return self.cls(hidden, self.shared_embedding())


class FlaxBertForPreTrainingModule(_Bert, heads.EncoderHeadModule):
    pooling: ClassVar[bool] = True

    def setup_head(self):
        self.cls = FlaxBertPreTrainingHeads(self.config, self.dtype)

    def head(self, outputs, deterministic):
        logits, seq_logits = self.cls(outputs.last_hidden_state, outputs.pooler_output, self.shared_embedding())
        return FlaxBertForPreTrainingOutput(prediction_logits=logits, seq_relationship_logits=seq_logits,
                                            hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBertForNextSentencePredictionModule(_Bert, heads.EncoderHeadModule):
    pooling: ClassVar[bool] = True

    def setup_head(self):
        self.cls = FlaxBertPreTrainingHeads(self.config, self.dtype)

    def head(self, outputs, deterministic):
        _, logits = self.cls(None, outputs.pooler_output)  # [B, 2]
        return FlaxNextSentencePredictorOutput(logits=logits, hidden_states=outputs.hidden_states,
                                               attentions=outputs.attentions)


class FlaxBertForMaskedLMModule(_BertLM, heads.MaskedLMModule):
    pass


class FlaxBertForCausalLMModule(_BertLM, heads.CausalLMModule):
    pass


class FlaxBertForSequenceClassificationModule(_Bert, heads.SequenceClassificationModule):
    pass


class FlaxBertForMultipleChoiceModule(_Bert, heads.MultipleChoiceModule):
    pass


class FlaxBertForTokenClassificationModule(_Bert, heads.TokenClassificationModule):
    pass


class FlaxBertForQuestionAnsweringModule(_Bert, heads.QuestionAnsweringModule):
    pass


# --- the model classes ---------------------------------------------------------------------------
class FlaxBertPreTrainedModel(FlaxEncoderPreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # The decoder bias is a copy of `cls.predictions.bias`; heads without a pooler ignore the checkpoint's.
    _keys_to_ignore_on_load_unexpected = FlaxEncoderPreTrainedModel._keys_to_ignore_on_load_unexpected + (
        r"cls\.predictions\.decoder\.bias$",)
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}


_NO_POOLER = FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected + (r"pooler",)


class FlaxBertModel(FlaxBertPreTrainedModel):
    module_class = FlaxBertModule
    _takes_encoder_states = True


class FlaxBertForPreTraining(FlaxBertPreTrainedModel):
    module_class = FlaxBertForPreTrainingModule


class FlaxBertForMaskedLM(FlaxBertPreTrainedModel):
    module_class = FlaxBertForMaskedLMModule
    _keys_to_ignore_on_load_unexpected = _NO_POOLER


class FlaxBertForNextSentencePrediction(FlaxBertPreTrainedModel):
    module_class = FlaxBertForNextSentencePredictionModule


class FlaxBertForSequenceClassification(FlaxBertPreTrainedModel):
    module_class = FlaxBertForSequenceClassificationModule


class FlaxBertForMultipleChoice(FlaxBertPreTrainedModel):
    module_class = FlaxBertForMultipleChoiceModule


class FlaxBertForTokenClassification(FlaxBertPreTrainedModel):
    module_class = FlaxBertForTokenClassificationModule
    _keys_to_ignore_on_load_unexpected = _NO_POOLER


class FlaxBertForQuestionAnswering(FlaxBertPreTrainedModel):
    module_class = FlaxBertForQuestionAnsweringModule
    _keys_to_ignore_on_load_unexpected = _NO_POOLER


class FlaxBertForCausalLM(FlaxBertPreTrainedModel):
    module_class = FlaxBertForCausalLMModule
    _takes_encoder_states = True
    is_causal_lm = True
    _keys_to_ignore_on_load_unexpected = _NO_POOLER


__all__ = [
    "FlaxBertForCausalLM",
    "FlaxBertForMaskedLM",
    "FlaxBertForMultipleChoice",
    "FlaxBertForNextSentencePrediction",
    "FlaxBertForPreTraining",
    "FlaxBertForQuestionAnswering",
    "FlaxBertForSequenceClassification",
    "FlaxBertForTokenClassification",
    "FlaxBertModel",
    "FlaxBertPreTrainedModel",
]

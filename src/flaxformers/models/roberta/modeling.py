"""RoBERTa in Flax: the base model and the six heads of transformers 4.x Flax, with its param names.

RoBERTa is BERT's encoder with what is its own: positions that count from `pad_token_id + 1` over real
tokens (fairseq's, computed from input_ids when position_ids are not given), an `lm_head` (dense,
gelu, `layer_norm`, tied decoder) and a `classifier` with dense/tanh/out_proj on the first token.
XLM-RoBERTa and RoBERTa-PreLayerNorm reuse these classes with their own base module and names.
"""

from __future__ import annotations

from typing import ClassVar

from flaxformers.encoder_models import FlaxEncoderPreTrainedModel
from flaxformers.models.roberta.configuration import RobertaConfig
from flaxformers.nn import heads
from flaxformers.nn.encoder import EncoderLayout, EncoderModel


class FlaxRobertaModule(EncoderModel):
    layout: ClassVar[EncoderLayout] = EncoderLayout(padding_positions=True)


class _Roberta:
    base_module: ClassVar = FlaxRobertaModule
    base_name: ClassVar[str] = "roberta"


class _RobertaLM(_Roberta):
    def setup_head(self):
        self.lm_head = heads.PredictionHead(self.config, self.dtype, act="gelu", nested=False, norm_name="layer_norm")

    def lm_logits(self, hidden):
        return self.lm_head(hidden, self.shared_embedding())


class FlaxRobertaForMaskedLMModule(_RobertaLM, heads.MaskedLMModule):
    pass


class FlaxRobertaForCausalLMModule(_RobertaLM, heads.CausalLMModule):
    pass


class FlaxRobertaForSequenceClassificationModule(_Roberta, heads.SequenceClassificationModule):
    pooling: ClassVar[bool] = False
    classifier_act: ClassVar[str] = "tanh"


class FlaxRobertaForMultipleChoiceModule(_Roberta, heads.MultipleChoiceModule):
    pass


class FlaxRobertaForTokenClassificationModule(_Roberta, heads.TokenClassificationModule):
    pass


class FlaxRobertaForQuestionAnsweringModule(_Roberta, heads.QuestionAnsweringModule):
    pass


# --- the model classes ---------------------------------------------------------------------------
class FlaxRobertaPreTrainedModel(FlaxEncoderPreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    # The decoder bias is a copy of `lm_head.bias`; heads without a pooler ignore the checkpoint's.
    _keys_to_ignore_on_load_unexpected = FlaxEncoderPreTrainedModel._keys_to_ignore_on_load_unexpected + (
        r"lm_head\.decoder\.bias$", r"pooler")
    _tied_weights_keys = {"lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight"}


class FlaxRobertaModel(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaModule
    _takes_encoder_states = True


class FlaxRobertaForMaskedLM(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForMaskedLMModule


class FlaxRobertaForSequenceClassification(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForSequenceClassificationModule


class FlaxRobertaForMultipleChoice(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForMultipleChoiceModule


class FlaxRobertaForTokenClassification(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForTokenClassificationModule


class FlaxRobertaForQuestionAnswering(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForQuestionAnsweringModule


class FlaxRobertaForCausalLM(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForCausalLMModule
    _takes_encoder_states = True
    is_causal_lm = True


__all__ = [
    "FlaxRobertaForCausalLM",
    "FlaxRobertaForMaskedLM",
    "FlaxRobertaForMultipleChoice",
    "FlaxRobertaForQuestionAnswering",
    "FlaxRobertaForSequenceClassification",
    "FlaxRobertaForTokenClassification",
    "FlaxRobertaModel",
    "FlaxRobertaPreTrainedModel",
]

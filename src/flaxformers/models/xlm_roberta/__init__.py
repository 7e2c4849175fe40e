"""XLM-RoBERTa: RoBERTa's model under its own names, with a SentencePiece Unigram tokenizer. The family's
declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bert import ENCODER_PARTITION_RULES
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxXLMRobertaModel",
    "causal-lm": "FlaxXLMRobertaForCausalLM",
    "masked-lm": "FlaxXLMRobertaForMaskedLM",
    "sequence-classification": "FlaxXLMRobertaForSequenceClassification",
    "multiple-choice": "FlaxXLMRobertaForMultipleChoice",
    "token-classification": "FlaxXLMRobertaForTokenClassification",
    "question-answering": "FlaxXLMRobertaForQuestionAnswering",
}

FAMILY = Family(
    name="xlm_roberta",
    model_types={"xlm-roberta": ModelType("XLMRobertaConfig", _HEADS)},
    exports={
        "configuration": ("XLMRobertaConfig",),
        "modeling": (*_HEADS.values(), "FlaxXLMRobertaPreTrainedModel"),
        "tokenization": ("xlm_roberta_tokenizer",),
    },
    partition_rules=ENCODER_PARTITION_RULES,
    tokenizer=TokenizerHint(("sentencepiece.bpe.model",),
                            "flaxformers.models.xlm_roberta.tokenization:xlm_roberta_tokenizer",
                            classes=("XLMRobertaTokenizer", "XLMRobertaTokenizerFast"), token_type_ids=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""RoBERTa: the base model and its six heads, on BERT's encoder. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bert import ENCODER_PARTITION_RULES
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxRobertaModel",
    "causal-lm": "FlaxRobertaForCausalLM",
    "masked-lm": "FlaxRobertaForMaskedLM",
    "sequence-classification": "FlaxRobertaForSequenceClassification",
    "multiple-choice": "FlaxRobertaForMultipleChoice",
    "token-classification": "FlaxRobertaForTokenClassification",
    "question-answering": "FlaxRobertaForQuestionAnswering",
}

# Byte-level BPE with `<s> A </s></s> B </s>`; RoBERTa-PreLayerNorm checkpoints use it too.
TOKENIZER = TokenizerHint(("vocab.json", "merges.txt"), "flaxformers.models.roberta.tokenization:roberta_tokenizer",
                          classes=("RobertaTokenizer", "RobertaTokenizerFast"), token_type_ids=False, by_files=False)

FAMILY = Family(
    name="roberta",
    model_types={"roberta": ModelType("RobertaConfig", _HEADS)},
    exports={
        "configuration": ("RobertaConfig",),
        "modeling": (*_HEADS.values(), "FlaxRobertaPreTrainedModel"),
        "tokenization": ("roberta_tokenizer",),
    },
    partition_rules=ENCODER_PARTITION_RULES,
    tokenizer=TOKENIZER,
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

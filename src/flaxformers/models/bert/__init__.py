"""BERT: the base model, its eight heads and sentence embeddings. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxBertModel",
    "causal-lm": "FlaxBertForCausalLM",
    "masked-lm": "FlaxBertForMaskedLM",
    "pretraining": "FlaxBertForPreTraining",
    "next-sentence-prediction": "FlaxBertForNextSentencePrediction",
    "sequence-classification": "FlaxBertForSequenceClassification",
    "multiple-choice": "FlaxBertForMultipleChoice",
    "token-classification": "FlaxBertForTokenClassification",
    "question-answering": "FlaxBertForQuestionAnswering",
}

# The BERT-style encoder's param names (nn/encoder.py), shared by the families built like it.
ENCODER_PARTITION_RULES = (
    (r"word_embeddings/embedding$", ("tensor", "fsdp")),
    (r"(position|token_type)_embeddings/embedding$", (None, "fsdp")),
    (r"(self/(query|key|value)|intermediate/dense)/kernel$", ("fsdp", "tensor")),
    (r"(self/(query|key|value)|intermediate/dense)/bias$", ("tensor",)),
    (r"(attention/output/dense|\d+/output/dense)/kernel$", ("tensor", "fsdp")),
    (r"(predictions|lm_head)/decoder/kernel$", ("fsdp", "tensor")),
    (r"(pooler|transform|lm_head)/dense/kernel$", ("fsdp", None)),
)

FAMILY = Family(
    name="bert",
    model_types={"bert": ModelType("BertConfig", _HEADS)},
    exports={
        "configuration": ("BertConfig",),
        "modeling": (*_HEADS.values(), "FlaxBertPreTrainedModel"),
    },
    partition_rules=ENCODER_PARTITION_RULES,
    gguf="gguf",
    tokenizer=TokenizerHint(("vocab.txt",), "flaxformers.tokenizers.wordpiece:wordpiece_tokenizer",
                            classes=("BertTokenizer", "BertTokenizerFast")),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""DistilBERT: the base model and its five heads; BERT's WordPiece tokenizer. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bert import FAMILY as BERT
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxDistilBertModel",
    "masked-lm": "FlaxDistilBertForMaskedLM",
    "sequence-classification": "FlaxDistilBertForSequenceClassification",
    "multiple-choice": "FlaxDistilBertForMultipleChoice",
    "token-classification": "FlaxDistilBertForTokenClassification",
    "question-answering": "FlaxDistilBertForQuestionAnswering",
}

FAMILY = Family(
    name="distilbert",
    model_types={"distilbert": ModelType("DistilBertConfig", _HEADS)},
    exports={
        "configuration": ("DistilBertConfig",),
        "modeling": (*_HEADS.values(), "FlaxDistilBertPreTrainedModel"),
        "tokenization": ("distilbert_tokenizer",),
    },
    partition_rules=(
        (r"word_embeddings/embedding$", ("tensor", "fsdp")),
        (r"position_embeddings/embedding$", (None, "fsdp")),
        (r"(attention/(q|k|v)_lin|ffn/lin1)/kernel$", ("fsdp", "tensor")),
        (r"(attention/(q|k|v)_lin|ffn/lin1)/bias$", ("tensor",)),
        (r"(attention/out_lin|ffn/lin2)/kernel$", ("tensor", "fsdp")),
    ),
    tokenizer=TokenizerHint(BERT.tokenizer.files, "flaxformers.models.distilbert.tokenization:distilbert_tokenizer",
                            classes=("DistilBertTokenizer", "DistilBertTokenizerFast"), token_type_ids=False, by_files=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

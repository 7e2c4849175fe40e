"""ALBERT: the base model and its six heads; a SentencePiece Unigram tokenizer. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxAlbertModel",
    "masked-lm": "FlaxAlbertForMaskedLM",
    "pretraining": "FlaxAlbertForPreTraining",
    "sequence-classification": "FlaxAlbertForSequenceClassification",
    "multiple-choice": "FlaxAlbertForMultipleChoice",
    "token-classification": "FlaxAlbertForTokenClassification",
    "question-answering": "FlaxAlbertForQuestionAnswering",
}

FAMILY = Family(
    name="albert",
    model_types={"albert": ModelType("AlbertConfig", _HEADS)},
    exports={
        "configuration": ("AlbertConfig",),
        "modeling": (*_HEADS.values(), "FlaxAlbertPreTrainedModel"),
        "tokenization": ("albert_tokenizer",),
    },
    partition_rules=(
        (r"word_embeddings/embedding$", ("tensor", "fsdp")),
        (r"(position|token_type)_embeddings/embedding$", (None, "fsdp")),
        (r"(attention/(query|key|value)|ffn)/kernel$", ("fsdp", "tensor")),
        (r"(attention/(query|key|value)|ffn)/bias$", ("tensor",)),
        (r"(attention/dense|ffn_output)/kernel$", ("tensor", "fsdp")),
        (r"predictions/decoder/kernel$", ("fsdp", "tensor")),
    ),
    tokenizer=TokenizerHint(("spiece.model",), "flaxformers.models.albert.tokenization:albert_tokenizer",
                            classes=("AlbertTokenizer", "AlbertTokenizerFast"), token_type_ids=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

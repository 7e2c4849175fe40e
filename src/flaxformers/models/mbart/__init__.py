"""mBART: BART-like, multilingual (the decoder starts from the target language code). The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.models.bart import SEQ2SEQ_PARTITION_RULES
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {
    "base": "FlaxMBartModel",
    "seq2seq-lm": "FlaxMBartForConditionalGeneration",
    "sequence-classification": "FlaxMBartForSequenceClassification",
    "question-answering": "FlaxMBartForQuestionAnswering",
}

FAMILY = Family(
    name="mbart",
    model_types={"mbart": ModelType("MBartConfig", _HEADS)},
    exports={
        "configuration": ("MBartConfig",),
        "modeling": (*_HEADS.values(), "FlaxMBartPreTrainedModel"),
        "tokenization": ("MBartTokenizer", "MBart50Tokenizer"),
    },
    partition_rules=SEQ2SEQ_PARTITION_RULES,
    # tokenizer.json says the vocabulary; the language codes around each text follow src_lang / tgt_lang
    tokenizer=TokenizerHint(adapt="flaxformers.models.mbart.tokenization:mbart_tokenizer",
                            classes=("MBartTokenizer", "MBartTokenizerFast", "MBart50Tokenizer", "MBart50TokenizerFast")),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

"""Wav2Vec2 (self-supervised speech encoder; CTC transcription): a convolutional feature encoder and a
transformer over its frames. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType, TokenizerHint

_HEADS = {"base": "FlaxWav2Vec2Model", "ctc": "FlaxWav2Vec2ForCTC", "pretraining": "FlaxWav2Vec2ForPreTraining"}

FAMILY = Family(
    name="wav2vec2",
    model_types={"wav2vec2": ModelType("Wav2Vec2Config", _HEADS)},
    exports={
        "configuration": ("Wav2Vec2Config",),
        "modeling": (*_HEADS.values(), "FlaxWav2Vec2PreTrainedModel", "pretraining_loss",
                     "compute_mask_indices"),
        "feature_extraction": ("Wav2Vec2FeatureExtractor",),
        "tokenization": ("Wav2Vec2CTCTokenizer",),
    },
    partition_rules=(
        (r"(q_proj|k_proj|v_proj|intermediate_dense)/kernel$", ("fsdp", "tensor")),
        (r"(out_proj|output_dense)/kernel$", ("tensor", "fsdp")),
        (r"lm_head/kernel$", ("fsdp", "tensor")),
    ),
    tokenizer=TokenizerHint(("vocab.json",), "flaxformers.models.wav2vec2.tokenization:ctc_tokenizer",
                            classes=("Wav2Vec2CTCTokenizer",), by_files=False),
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

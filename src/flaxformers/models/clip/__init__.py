"""CLIP: the joint model, the text and vision towers (with and without projection), CLIP's tokenizer
and processors. The family's declaration."""

from flaxformers._lazy import lazy_exports
from flaxformers.registry import Family, ModelType, TokenizerHint

FAMILY = Family(
    name="clip",
    model_types={
        "clip": ModelType("CLIPConfig", {"base": "FlaxCLIPModel"}),
        # a tower saved on its own (diffusion pipelines' text encoders): CLIPTextModel, CLIPVisionModel
        "clip_text_model": ModelType("CLIPTextConfig", {"base": "FlaxCLIPTextModel"}),
        "clip_vision_model": ModelType("CLIPVisionConfig", {"base": "FlaxCLIPVisionModel"}),
    },
    exports={
        "configuration": ("CLIPConfig", "CLIPTextConfig", "CLIPVisionConfig"),
        "modeling": (
            "FlaxCLIPModel", "FlaxCLIPOutput", "FlaxCLIPPreTrainedModel", "FlaxCLIPTextModel", "FlaxCLIPTextModelOutput",
            "FlaxCLIPTextModelWithProjection", "FlaxCLIPTextPreTrainedModel", "FlaxCLIPVisionModel",
            "FlaxCLIPVisionModelOutput", "FlaxCLIPVisionModelWithProjection", "FlaxCLIPVisionPreTrainedModel",
        ),
        "processing": ("CLIPImageProcessor", "CLIPProcessor"),
        "tokenization": ("clip_tokenizer",),
    },
    partition_rules=(
        (r"token_embedding/embedding$", ("tensor", "fsdp")),
        (r"self_attn/(q_proj|k_proj|v_proj)/kernel$", ("fsdp", "tensor")),
        (r"self_attn/(q_proj|k_proj|v_proj)/bias$", ("tensor",)),
        (r"self_attn/out_proj/kernel$", ("tensor", "fsdp")),
        (r"mlp/fc1/kernel$", ("fsdp", "tensor")),
        (r"mlp/fc1/bias$", ("tensor",)),
        (r"mlp/fc2/kernel$", ("tensor", "fsdp")),
    ),
    # vocab.json + merges.txt are GPT-2's files too: CLIP's is chosen by tokenizer_class or model_type only
    tokenizer=TokenizerHint(("vocab.json", "merges.txt"), "flaxformers.models.clip.tokenization:clip_tokenizer",
                            classes=("CLIPTokenizer", "CLIPTokenizerFast"), by_files=False),
    image_processor="CLIPImageProcessor",
)

__getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
__all__ = sorted(FAMILY.export_modules())

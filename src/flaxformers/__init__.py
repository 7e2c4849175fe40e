"""flaxformers: Hugging Face GPT-2, Gemma, BLOOM and BERT in JAX/Flax, with transformers 4.x's Flax API."""

from __future__ import annotations

from flaxformers._lazy import lazy_exports

__version__ = "0.1.0"

# Public name -> module that defines it. Imports are lazy so `import flaxformers` stays fast.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["PretrainedConfig"], "flaxformers.configuration_utils"),
    **dict.fromkeys(["FlaxPreTrainedModel"], "flaxformers.modeling_utils"),
    **dict.fromkeys(["GenerationConfig"], "flaxformers.generation.config"),
    **dict.fromkeys(["TextStreamer", "TextIteratorStreamer", "TokenIteratorStreamer"], "flaxformers.generation.streamers"),
    **dict.fromkeys(["AutoTokenizer", "Tokenizer"], "flaxformers.tokenizers"),
    **dict.fromkeys(
        [
            "AutoConfig",
            "FlaxAutoModel",
            "FlaxAutoModelForCausalLM",
            "FlaxAutoModelForMaskedLM",
            "FlaxAutoModelForPreTraining",
            "FlaxAutoModelForNextSentencePrediction",
            "FlaxAutoModelForSequenceClassification",
            "FlaxAutoModelForMultipleChoice",
            "FlaxAutoModelForTokenClassification",
            "FlaxAutoModelForQuestionAnswering",
        ],
        "flaxformers.auto",
    ),
    **dict.fromkeys(
        ["GPT2Config", "FlaxGPT2Model", "FlaxGPT2LMHeadModel", "FlaxGPT2PreTrainedModel"],
        "flaxformers.models.gpt2",
    ),
    **dict.fromkeys(
        [
            "GemmaConfig",
            "FlaxGemmaModel",
            "FlaxGemmaForCausalLM",
            "FlaxGemmaPreTrainedModel",
            "Gemma2Config",
            "FlaxGemma2Model",
            "FlaxGemma2ForCausalLM",
            "Gemma3TextConfig",
            "FlaxGemma3Model",
            "FlaxGemma3ForCausalLM",
        ],
        "flaxformers.models.gemma",
    ),
    **dict.fromkeys(
        ["BloomConfig", "FlaxBloomModel", "FlaxBloomForCausalLM", "FlaxBloomPreTrainedModel"],
        "flaxformers.models.bloom",
    ),
    **dict.fromkeys(
        [
            "BertConfig",
            "FlaxBertModel",
            "FlaxBertForPreTraining",
            "FlaxBertForMaskedLM",
            "FlaxBertForNextSentencePrediction",
            "FlaxBertForSequenceClassification",
            "FlaxBertForMultipleChoice",
            "FlaxBertForTokenClassification",
            "FlaxBertForQuestionAnswering",
            "FlaxBertForCausalLM",
            "FlaxBertPreTrainedModel",
        ],
        "flaxformers.models.bert",
    ),
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

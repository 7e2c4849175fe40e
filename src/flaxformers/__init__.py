"""flaxformers: transformers 4.x's Flax models, maintained: the same API, in JAX/Flax."""

from __future__ import annotations

from flaxformers._lazy import lazy_exports
from flaxformers.generation import _EXPORTS as generation_exports
from flaxformers.registry import AUTO_TASKS, exports

__version__ = "0.1.0"

# Public name -> module that defines it. Imports are lazy so `import flaxformers` stays fast; each
# family's names come from its declaration (flaxformers.registry), which imports no model code.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["PretrainedConfig"], "flaxformers.configuration_utils"),
    **dict.fromkeys(["FlaxPreTrainedModel"], "flaxformers.modeling_utils"),
    **dict.fromkeys(["GenerationConfig"], "flaxformers.generation.config"),
    **dict.fromkeys(["TextStreamer", "TextIteratorStreamer", "TokenIteratorStreamer"], "flaxformers.generation.streamers"),
    **dict.fromkeys(["GenerationMixin", "FlaxGenerationMixin"], "flaxformers.generation.mixin"),
    **{name: module for name, module in generation_exports.items() if name.startswith("Flax")},
    **dict.fromkeys(["AutoTokenizer", "Tokenizer"], "flaxformers.tokenizers"),
    **dict.fromkeys(["AutoFeatureExtractor", "AutoImageProcessor", "AutoProcessor", "ImageProcessor", "Processor",
                     "load_image"], "flaxformers.processors"),
    **dict.fromkeys(["load_audio"], "flaxformers.audio"),
    **dict.fromkeys(["pipeline"], "flaxformers.pipelines"),
    **dict.fromkeys(["AutoConfig", *AUTO_TASKS.values()], "flaxformers.auto"),
    **exports(),
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

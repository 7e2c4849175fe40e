from flaxformers.models.bloom.configuration import BloomConfig
from flaxformers.models.bloom.modeling import FlaxBloomForCausalLM, FlaxBloomModel, FlaxBloomPreTrainedModel

__all__ = ["BloomConfig", "FlaxBloomModel", "FlaxBloomForCausalLM", "FlaxBloomPreTrainedModel"]

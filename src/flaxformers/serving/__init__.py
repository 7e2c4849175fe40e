"""An OpenAI-compatible server over the continuous batcher (`flaxformers serve`). Needs the `serve` extra."""

from flaxformers.serving.app import OpenAIError, ServedEmbedder, ServedModel, create_app

__all__ = ["OpenAIError", "ServedEmbedder", "ServedModel", "create_app"]

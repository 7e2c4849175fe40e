"""`generate` for every causal LM. (The engine lands with the generation issue.)"""

from __future__ import annotations


class GenerationMixin:
    def generate(self, *args, **kwargs):
        raise NotImplementedError("generate is not implemented yet")

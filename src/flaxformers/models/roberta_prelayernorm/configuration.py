"""RobertaPreLayerNormConfig: RoBERTa's keys."""

from __future__ import annotations

from flaxformers.models.roberta.configuration import RobertaConfig


class RobertaPreLayerNormConfig(RobertaConfig):
    model_type = "roberta-prelayernorm"

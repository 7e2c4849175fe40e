"""mBART: the BART-like transformer (pre-norm, final layer norms), whose decoder inputs start with the
target language code instead of a fixed start token."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from flaxformers.models.bart.modeling import (
    FlaxBartForConditionalGeneration,
    FlaxBartForQuestionAnswering,
    FlaxBartForSequenceClassification,
    FlaxBartModel,
    FlaxBartPreTrainedModel,
)
from flaxformers.models.mbart.configuration import MBartConfig


def shift_tokens_right(input_ids: Any, pad_token_id: int | None) -> jax.Array:
    """Shift one token to the right and wrap each row's last non-pad token (its language code) to the front."""
    if pad_token_id is None:
        raise ValueError("config.pad_token_id is not set: mBART needs it to find each row's language code.")
    ids = jnp.asarray(input_ids, dtype="i4")
    ids = jnp.where(ids == -100, pad_token_id, ids)
    last = jnp.sum(ids != pad_token_id, axis=-1) - 1  # [B]
    start = jnp.take_along_axis(ids, last[:, None], axis=1)  # [B, 1]
    return jnp.concatenate([start, ids[:, :-1]], axis=1)


class FlaxMBartPreTrainedModel(FlaxBartPreTrainedModel):
    config_class = MBartConfig

    def prepare_decoder_input_ids_from_labels(self, labels: Any) -> jax.Array:
        return shift_tokens_right(labels, self.config.pad_token_id)


class FlaxMBartModel(FlaxMBartPreTrainedModel, FlaxBartModel):
    pass


class FlaxMBartForConditionalGeneration(FlaxMBartPreTrainedModel, FlaxBartForConditionalGeneration):
    pass


class FlaxMBartForSequenceClassification(FlaxMBartPreTrainedModel, FlaxBartForSequenceClassification):
    pass


class FlaxMBartForQuestionAnswering(FlaxMBartPreTrainedModel, FlaxBartForQuestionAnswering):
    pass

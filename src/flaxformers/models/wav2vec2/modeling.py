"""Wav2Vec2 in Flax, with transformers 4.57 Flax's param names.

Raw audio [B, samples] goes through a convolutional feature encoder (`feature_extractor/conv_layers/{i}`:
group norm on the first layer only, or layer norm on every layer), a `feature_projection`, a
weight-normed grouped convolution as positions (`encoder/pos_conv_embed/conv/weight_v`, `weight_g`), then
transformer layers: post-norm with the encoder's `layer_norm` before them, or pre-norm ("stable layer
norm") with it after them. 4.57 Flax had only the layer-norm, stable variant; the others are PyTorch's.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxformers.modeling_utils import FlaxPreTrainedModel
from flaxformers.models.wav2vec2.configuration import Wav2Vec2Config
from flaxformers.nn.attention import AttentionSpec, MultiHeadAttention
from flaxformers.nn.layers import activation, layer_norm
from flaxformers.nn.stack import LayerStack
from flaxformers.outputs import FlaxBaseModelOutput, FlaxCausalLMOutput, ModelOutput


class FlaxWav2Vec2BaseModelOutput(ModelOutput):
    last_hidden_state: jax.Array = None
    extract_features: jax.Array = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


def conv_output_lengths(config: Wav2Vec2Config, lengths: Any) -> Any:
    """Frames the feature encoder makes of `lengths` samples (valid convolutions)."""
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        lengths = (lengths - kernel) // stride + 1
    return lengths


def frame_mask(config: Wav2Vec2Config, frames: int, attention_mask: jax.Array) -> jax.Array:
    """The sample mask [B, samples] as a frame mask [B, frames]: each row's first valid frames."""
    lengths = conv_output_lengths(config, jnp.sum(attention_mask, axis=-1))
    return (jnp.arange(frames)[None, :] < lengths[:, None]).astype(jnp.int32)


class FlaxWav2Vec2ConvLayer(nn.Module):
    """`conv`, then `layer_norm`: a LayerNorm over channels ("layer"), or on the first layer only a GroupNorm
    with one group per channel, over time ("group")."""

    config: Wav2Vec2Config
    index: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg, i = self.config, self.index
        dim = cfg.conv_dim[i]
        hidden = nn.Conv(dim, (cfg.conv_kernel[i],), strides=(cfg.conv_stride[i],), use_bias=cfg.conv_bias,
                         padding="VALID", dtype=self.dtype, kernel_init=nn.initializers.he_normal(), name="conv")(hidden)
        if cfg.feat_extract_norm == "layer":
            hidden = nn.LayerNorm(epsilon=cfg.layer_norm_eps, dtype=self.dtype, name="layer_norm")(hidden)
        elif i == 0:
            hidden = nn.GroupNorm(num_groups=dim, epsilon=1e-5, dtype=self.dtype, name="layer_norm")(hidden)
        return activation(cfg.feat_extract_activation)(hidden)  # [B, T_i, C_i]


class _ConvLayers(nn.Module):
    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        for i in range(self.config.num_feat_extract_layers):
            hidden = FlaxWav2Vec2ConvLayer(self.config, i, self.dtype, name=str(i))(hidden)
        return hidden


class FlaxWav2Vec2FeatureEncoder(nn.Module):
    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, input_values, freeze_feature_encoder=False):
        hidden = input_values[:, :, None].astype(self.dtype)  # [B, samples, 1]
        hidden = _ConvLayers(self.config, self.dtype, name="conv_layers")(hidden)
        return jax.lax.stop_gradient(hidden) if freeze_feature_encoder else hidden


class FlaxWav2Vec2PositionalConvEmbedding(nn.Module):
    """A weight-normed grouped convolution over time (PyTorch's `weight_norm(dim=2)`): `weight_v` [D, D/G, K]
    scaled to `weight_g` [1, 1, K] per kernel position; an even kernel's extra last frame is dropped."""

    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        d, k, groups = cfg.hidden_size, cfg.num_conv_pos_embeddings, cfg.num_conv_pos_embedding_groups
        conv = _WeightNormConv(d, k, groups, self.dtype, name="conv")
        out = conv(hidden)
        if k % 2 == 0:
            out = out[:, :-1]
        return activation(cfg.feat_extract_activation)(out)  # [B, T, D]


class _WeightNormConv(nn.Module):
    features: int
    kernel_size: int
    groups: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        shape = (self.features, self.features // self.groups, self.kernel_size)
        weight_v = self.param("weight_v", nn.initializers.he_normal(), shape)
        weight_g = self.param("weight_g", lambda _: jnp.linalg.norm(weight_v, axis=(0, 1))[None, None, :])
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        kernel = weight_v / jnp.linalg.norm(weight_v, axis=(0, 1))[None, None, :] * weight_g  # [D, D/G, K]
        pad = self.kernel_size // 2
        out = jax.lax.conv_general_dilated(
            hidden.astype(self.dtype), jnp.transpose(kernel, (2, 1, 0)).astype(self.dtype), window_strides=(1,),
            padding=[(pad, pad)], dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=self.groups)
        return out + bias.astype(self.dtype)


class FlaxWav2Vec2FeedForward(nn.Module):
    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, deterministic=True):
        cfg = self.config
        dense = lambda n, name: nn.Dense(n, dtype=self.dtype, name=name,  # noqa: E731
                                         kernel_init=nn.initializers.normal(cfg.initializer_range))
        hidden = activation(cfg.hidden_act)(dense(cfg.intermediate_size, "intermediate_dense")(hidden))
        hidden = nn.Dropout(cfg.activation_dropout)(hidden, deterministic=deterministic)
        hidden = dense(cfg.hidden_size, "output_dense")(hidden)
        return nn.Dropout(cfg.hidden_dropout)(hidden, deterministic=deterministic)


class FlaxWav2Vec2EncoderLayer(nn.Module):
    """Post-norm, or pre-norm with `do_stable_layer_norm`."""

    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32
    layer_idx: int = 0

    @nn.compact
    def __call__(self, hidden, attention_mask, deterministic=True, init_cache=False, output_attentions=False):
        cfg = self.config
        spec = AttentionSpec(scale=(cfg.hidden_size // cfg.num_attention_heads) ** -0.5, causal=False,
                             dropout_rate=cfg.attention_dropout)
        attention = MultiHeadAttention(cfg.num_attention_heads, spec, dtype=self.dtype, name="attention",
                                       kernel_init=nn.initializers.normal(cfg.initializer_range))
        norm = layer_norm(cfg.layer_norm_eps, self.dtype, "layer_norm")
        final_norm = layer_norm(cfg.layer_norm_eps, self.dtype, "final_layer_norm")
        feed_forward = FlaxWav2Vec2FeedForward(cfg, self.dtype, name="feed_forward")
        dropout = nn.Dropout(cfg.hidden_dropout)
        stable = cfg.do_stable_layer_norm
        out, weights = attention(norm(hidden) if stable else hidden, attention_mask, deterministic=deterministic)
        hidden = hidden + dropout(out, deterministic=deterministic)
        if stable:
            hidden = hidden + feed_forward(final_norm(hidden), deterministic=deterministic)
        else:
            hidden = norm(hidden)
            hidden = final_norm(hidden + feed_forward(hidden, deterministic=deterministic))
        return hidden, weights if output_attentions else None, None


class FlaxWav2Vec2Encoder(nn.Module):
    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, hidden, attention_mask, deterministic=True, output_attentions=False,
                 output_hidden_states=False, return_dict=True):
        cfg = self.config
        if attention_mask is not None:  # padded frames contribute nothing, positions included
            hidden = jnp.where(attention_mask[:, :, None] > 0, hidden, 0.0)
        hidden = hidden + FlaxWav2Vec2PositionalConvEmbedding(cfg, self.dtype, name="pos_conv_embed")(hidden)
        norm = layer_norm(cfg.layer_norm_eps, self.dtype, "layer_norm")
        if not cfg.do_stable_layer_norm:
            hidden = norm(hidden)
        hidden = nn.Dropout(cfg.hidden_dropout)(hidden, deterministic=deterministic)
        layers = LayerStack(FlaxWav2Vec2EncoderLayer, cfg.num_hidden_layers, {"config": cfg, "dtype": self.dtype},
                            gradient_checkpointing=self.gradient_checkpointing, remat_policy=self.remat_policy,
                            name="layers")
        hidden, all_hidden, attentions, _ = layers(hidden, (attention_mask,), deterministic, False,
                                                   output_attentions, output_hidden_states)
        if output_hidden_states:  # the last layer's output, before the stable variant's final norm (transformers 5)
            all_hidden = all_hidden + (hidden,)
        if cfg.do_stable_layer_norm:
            hidden = norm(hidden)
        if not return_dict:
            return tuple(v for v in (hidden, all_hidden, attentions) if v is not None)
        return FlaxBaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=attentions)


class FlaxWav2Vec2Module(nn.Module):
    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, input_values, attention_mask=None, mask_time_indices=None, deterministic=True,
                 output_attentions=False, output_hidden_states=False, freeze_feature_encoder=False, return_dict=True):
        cfg = self.config
        features = FlaxWav2Vec2FeatureEncoder(cfg, self.dtype, name="feature_extractor")(
            input_values, freeze_feature_encoder)  # [B, T, C]
        frames = None if attention_mask is None else frame_mask(cfg, features.shape[1], attention_mask)
        hidden, extract = FlaxWav2Vec2FeatureProjection(cfg, self.dtype, name="feature_projection")(
            features, deterministic)
        if cfg.mask_time_prob > 0.0 or cfg.mask_feature_prob > 0.0:  # PyTorch holds the vector only then
            masked = self.param("masked_spec_embed", nn.initializers.uniform(), (cfg.hidden_size,))
            if mask_time_indices is not None:  # SpecAugment: the chosen frames become the learned vector
                hidden = jnp.where(mask_time_indices[:, :, None], masked.astype(hidden.dtype), hidden)
        outputs = FlaxWav2Vec2Encoder(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy,
                                      name="encoder")(hidden, frames, deterministic, output_attentions,
                                                      output_hidden_states, return_dict=True)
        if not return_dict:
            return tuple(v for v in (outputs.last_hidden_state, extract, outputs.hidden_states, outputs.attentions)
                         if v is not None)
        return FlaxWav2Vec2BaseModelOutput(last_hidden_state=outputs.last_hidden_state, extract_features=extract,
                                           hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxWav2Vec2FeatureProjection(nn.Module):
    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, features, deterministic=True):
        cfg = self.config
        normed = layer_norm(cfg.layer_norm_eps, self.dtype, "layer_norm")(features)
        hidden = nn.Dense(cfg.hidden_size, dtype=self.dtype, kernel_init=nn.initializers.normal(cfg.initializer_range),
                          name="projection")(normed)
        return nn.Dropout(cfg.feat_proj_dropout)(hidden, deterministic=deterministic), normed


class FlaxWav2Vec2ForCTCModule(nn.Module):
    """Per-frame vocabulary logits (`lm_head`) for CTC decoding."""

    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, input_values, attention_mask=None, mask_time_indices=None, deterministic=True,
                 output_attentions=False, output_hidden_states=False, freeze_feature_encoder=False, return_dict=True):
        cfg = self.config
        outputs = FlaxWav2Vec2Module(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy,
                                     name="wav2vec2")(input_values, attention_mask, mask_time_indices, deterministic,
                                                      output_attentions, output_hidden_states,
                                                      freeze_feature_encoder, return_dict=True)
        hidden = nn.Dropout(cfg.final_dropout)(outputs.last_hidden_state, deterministic=deterministic)
        logits = nn.Dense(cfg.vocab_size, dtype=self.dtype, name="lm_head",
                          kernel_init=nn.initializers.normal(cfg.initializer_range))(hidden)  # [B, T, V]
        if not return_dict:
            return tuple(v for v in (logits, outputs.hidden_states, outputs.attentions) if v is not None)
        return FlaxCausalLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


# --- the model classes ---------------------------------------------------------------------------
class FlaxWav2Vec2PreTrainedModel(FlaxPreTrainedModel):
    config_class = Wav2Vec2Config
    base_model_prefix = "wav2vec2"
    main_input_name = "input_values"

    def __init__(self, config: Wav2Vec2Config, input_shape: tuple[int, ...] | None = None, seed: int = 0,
                 dtype: jnp.dtype = jnp.float32, _do_init: bool = True, gradient_checkpointing: bool = False,
                 **kwargs: Any):
        super().__init__(config, input_shape=input_shape or (1, 1024), seed=seed, dtype=dtype, _do_init=_do_init,
                         **kwargs)
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, jax.Array]:
        return {"input_values": jnp.zeros(input_shape, jnp.float32), "attention_mask": jnp.ones(input_shape, "i4")}

    def _get_feat_extract_output_lengths(self, input_lengths: Any, add_adapter: bool | None = None) -> Any:
        """Frames the feature encoder makes of `input_lengths` samples (4.57's name)."""
        return conv_output_lengths(self.config, input_lengths)

    def __call__(self, input_values: Any, attention_mask: Any = None, mask_time_indices: Any = None,
                 params: dict | None = None, dropout_rng: jax.Array | None = None, train: bool = False,
                 output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                 freeze_feature_encoder: bool = False, return_dict: bool | None = None):
        values = jnp.asarray(input_values, jnp.float32)
        if values.ndim != 2:
            raise ValueError(f"input_values must be raw audio [batch, samples], got shape {values.shape}; make it "
                             "with Wav2Vec2FeatureExtractor.")
        inputs = {"input_values": values,
                  "attention_mask": None if attention_mask is None else jnp.asarray(attention_mask, "i4"),
                  "mask_time_indices": None if mask_time_indices is None else jnp.asarray(mask_time_indices, bool),
                  "freeze_feature_encoder": freeze_feature_encoder}
        return self._apply(inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=return_dict)


class FlaxWav2Vec2Model(FlaxWav2Vec2PreTrainedModel):
    module_class = FlaxWav2Vec2Module


class FlaxWav2Vec2ForCTC(FlaxWav2Vec2PreTrainedModel):
    module_class = FlaxWav2Vec2ForCTCModule


__all__ = ["FlaxWav2Vec2ForCTC", "FlaxWav2Vec2Model", "FlaxWav2Vec2PreTrainedModel"]

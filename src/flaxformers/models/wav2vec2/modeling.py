"""Wav2Vec2 in Flax, with transformers 4.57 Flax's param names.

Raw audio [B, samples] goes through a convolutional feature encoder (`feature_extractor/conv_layers/{i}`:
group norm on the first layer only, or layer norm on every layer), a `feature_projection`, a
weight-normed grouped convolution as positions (`encoder/pos_conv_embed/conv/weight_v`, `weight_g`), then
transformer layers: post-norm with the encoder's `layer_norm` before them, or pre-norm ("stable layer
norm") with it after them. 4.57 Flax had only the layer-norm, stable variant; the others are PyTorch's.
With `add_adapter` (a speech encoder-decoder's encoder) strided GLU convolutions (`adapter`) shorten the
transformer's output in time, after a projection to `output_hidden_size` when that differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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


def conv_output_lengths(config: Wav2Vec2Config, lengths: Any, add_adapter: bool = False) -> Any:
    """Frames the feature encoder makes of `lengths` samples (valid convolutions), and with `add_adapter`
    what the adapter's strided convolutions leave of them (transformers counts those as kernel 1)."""
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        lengths = (lengths - kernel) // stride + 1
    for _ in range(config.num_adapter_layers if add_adapter else 0):
        lengths = (lengths - 1) // config.adapter_stride + 1
    return lengths


def frame_mask(config: Wav2Vec2Config, frames: int, attention_mask: jax.Array, add_adapter: bool = False) -> jax.Array:
    """The sample mask [B, samples] as a frame mask [B, frames]: each row's first valid frames (after the
    adapter with `add_adapter`: the mask over the model's output)."""
    lengths = conv_output_lengths(config, jnp.sum(attention_mask, axis=-1), add_adapter)
    return (jnp.arange(frames)[None, :] < lengths[:, None]).astype(jnp.int32)


def compute_mask_indices(shape: tuple[int, int], mask_prob: float, mask_length: int,
                         attention_mask: np.ndarray | None = None, min_masks: int = 0,
                         rng: np.random.RandomState | None = None) -> np.ndarray:
    """SpecAugment's time mask [B, T] (bool) for pre-training and fine-tuning, drawn on the host as
    transformers draws it: about `mask_prob * length / mask_length` spans of `mask_length` frames per row
    (at least `min_masks`) within each row's `attention_mask` length. `rng` defaults to numpy's global
    state, so a seed gives transformers' masks."""
    rng = rng if rng is not None else np.random.mtrand._rand
    batch, length = shape
    if not 1 <= mask_length <= length:
        raise ValueError(f"mask_length={mask_length} must be between 1 and the sequence length {length}.")
    epsilon = rng.rand(1).item()  # rounds the expected span count up or down at random

    def spans(frames: int) -> int:
        count = max(int(mask_prob * frames / mask_length + epsilon), min_masks)
        if count * mask_length > length:
            count = length // mask_length
        return max(min(count, frames - (mask_length - 1)), 0)

    mask = np.zeros((batch, length), dtype=bool)
    if spans(length) == 0:
        return mask
    lengths = [length] * batch if attention_mask is None else np.asarray(attention_mask).sum(-1).tolist()
    for row, frames in enumerate(lengths):
        for start in rng.choice(np.arange(frames - (mask_length - 1)), spans(frames), replace=False):
            mask[row, start:start + mask_length] = True
    return mask


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


class _NumberedLayers(nn.Module):
    """`count` layers named `0`, `1`, ... under one name (4.57's layer collections), applied in turn;
    `layer(i, name)` makes the i-th."""

    layer: Callable[[int, str], nn.Module]
    count: int

    @nn.compact
    def __call__(self, hidden):
        for i in range(self.count):
            hidden = self.layer(i, str(i))(hidden)
        return hidden


class FlaxWav2Vec2FeatureEncoder(nn.Module):
    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, input_values, freeze_feature_encoder=False):
        hidden = input_values[:, :, None].astype(self.dtype)  # [B, samples, 1]
        cfg, dtype = self.config, self.dtype
        hidden = _NumberedLayers(lambda i, name: FlaxWav2Vec2ConvLayer(cfg, i, dtype, name=name),
                                 cfg.num_feat_extract_layers, name="conv_layers")(hidden)
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


class FlaxWav2Vec2AdapterLayer(nn.Module):
    """A strided convolution to twice the width, halved again by a gated linear unit."""

    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        hidden = nn.Conv(2 * cfg.output_hidden_size, (cfg.adapter_kernel_size,), strides=(cfg.adapter_stride,),
                         padding=((1, 1),), dtype=self.dtype, kernel_init=nn.initializers.normal(cfg.initializer_range),
                         name="conv")(hidden)  # [B, T / stride, 2 * D_out]
        return nn.glu(hidden, axis=-1)


class FlaxWav2Vec2Adapter(nn.Module):
    """`proj` and `proj_layer_norm` into `output_hidden_size` when it differs from `hidden_size`, then the
    adapter `layers`."""

    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden):
        cfg = self.config
        if cfg.output_hidden_size != cfg.hidden_size:
            hidden = nn.Dense(cfg.output_hidden_size, dtype=self.dtype, name="proj",
                              kernel_init=nn.initializers.normal(cfg.initializer_range))(hidden)
            # PyTorch's LayerNorm at its default epsilon (4.57 Flax's used layer_norm_eps, equal by default)
            hidden = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name="proj_layer_norm")(hidden)
        dtype = self.dtype
        return _NumberedLayers(lambda _, name: FlaxWav2Vec2AdapterLayer(cfg, dtype, name=name),
                               cfg.num_adapter_layers, name="layers")(hidden)  # [B, T', D_out]


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
            if mask_time_indices is not None and cfg.apply_spec_augment:  # the chosen frames become the vector
                hidden = jnp.where(mask_time_indices[:, :, None], masked.astype(hidden.dtype), hidden)
        outputs = FlaxWav2Vec2Encoder(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy,
                                      name="encoder")(hidden, frames, deterministic, output_attentions,
                                                      output_hidden_states, return_dict=True)
        hidden = outputs.last_hidden_state
        if cfg.add_adapter:
            hidden = FlaxWav2Vec2Adapter(cfg, self.dtype, name="adapter")(hidden)
        if not return_dict:
            return tuple(v for v in (hidden, extract, outputs.hidden_states, outputs.attentions) if v is not None)
        return FlaxWav2Vec2BaseModelOutput(last_hidden_state=hidden, extract_features=extract,
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


class FlaxWav2Vec2ForPreTrainingOutput(ModelOutput):
    projected_states: jax.Array = None
    projected_quantized_states: jax.Array = None
    codevector_perplexity: jax.Array = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class FlaxWav2Vec2GumbelVectorQuantizer(nn.Module):
    """Product quantisation of the extracted features: per group, one of `num_codevectors_per_group`
    `codevectors`, picked by argmax (deterministic) or a Gumbel-softmax sample (training)."""

    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden, mask_time_indices=None, deterministic=True, temperature=1.0):
        cfg = self.config
        groups, per_group = cfg.num_codevector_groups, cfg.num_codevectors_per_group
        b, t, _ = hidden.shape
        codevectors = self.param("codevectors", nn.initializers.uniform(),
                                 (1, groups * per_group, cfg.codevector_dim // groups))
        scores = nn.Dense(groups * per_group, dtype=self.dtype, kernel_init=nn.initializers.normal(1.0),
                          name="weight_proj")(hidden).reshape(b * t, groups, per_group)
        if deterministic:
            probs = jax.nn.one_hot(jnp.argmax(scores, axis=-1), per_group, dtype=scores.dtype)
            perplexity = codevector_perplexity(probs, mask_time_indices)
        else:
            gumbels = jax.random.gumbel(self.make_rng("gumbel"), scores.shape, scores.dtype)
            probs = jax.nn.softmax((scores + gumbels) / temperature, axis=-1)
            perplexity = codevector_perplexity(jax.nn.softmax(scores, axis=-1), mask_time_indices)
        chosen = jnp.einsum("xgv,gvd->xgd", probs, codevectors.reshape(groups, per_group, -1))  # [B*T, G, D/G]
        return chosen.reshape(b, t, -1), perplexity


def codevector_perplexity(probs: jax.Array, mask: jax.Array | None) -> jax.Array:
    """exp(entropy) of each group's mean codevector distribution over the (masked) frames, summed over groups."""
    if mask is not None:
        flat = mask.reshape(-1)[:, None, None]
        marginal = jnp.where(flat, probs, 0.0).sum(axis=0) / mask.sum()
    else:
        marginal = probs.mean(axis=0)  # [G, V]
    return jnp.exp(-jnp.sum(marginal * jnp.log(marginal + 1e-7), axis=-1)).sum()


class FlaxWav2Vec2ForPreTrainingModule(nn.Module):
    """The contrastive pre-training heads: `project_hid` of the transformer states and `project_q` of the
    quantised features."""

    config: Wav2Vec2Config
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    remat_policy: Any = None

    @nn.compact
    def __call__(self, input_values, attention_mask=None, mask_time_indices=None, gumbel_temperature=1.0,
                 deterministic=True, output_attentions=False, output_hidden_states=False,
                 freeze_feature_encoder=False, return_dict=True):
        cfg = self.config
        outputs = FlaxWav2Vec2Module(cfg, self.dtype, self.gradient_checkpointing, self.remat_policy,
                                     name="wav2vec2")(input_values, attention_mask, mask_time_indices, deterministic,
                                                      output_attentions, output_hidden_states,
                                                      freeze_feature_encoder, return_dict=True)
        dense = lambda name: nn.Dense(cfg.proj_codevector_dim, dtype=self.dtype, name=name,  # noqa: E731
                                      kernel_init=nn.initializers.normal(cfg.initializer_range))
        projected = dense("project_hid")(outputs.last_hidden_state)
        features = nn.Dropout(cfg.feat_quantizer_dropout)(outputs.extract_features, deterministic=deterministic)
        quantized, perplexity = FlaxWav2Vec2GumbelVectorQuantizer(cfg, self.dtype, name="quantizer")(
            features, mask_time_indices, deterministic, gumbel_temperature)
        quantized = dense("project_q")(quantized)
        if not return_dict:
            return tuple(v for v in (projected, quantized, perplexity, outputs.hidden_states, outputs.attentions)
                         if v is not None)
        return FlaxWav2Vec2ForPreTrainingOutput(
            projected_states=projected, projected_quantized_states=quantized, codevector_perplexity=perplexity,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions)


def pretraining_loss(config: Wav2Vec2Config, outputs: Any, mask_time_indices: Any,
                     sampled_negative_indices: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """transformers' pre-training loss (loss, contrastive, diversity): cross-entropy of each masked frame's
    cosine similarities (over `contrastive_logits_temperature`) to its quantised target against the
    negatives `sampled_negative_indices` [B, T, K] (flat frame indices), plus the codebook diversity term."""
    quantized, predicted = outputs.projected_quantized_states, outputs.projected_states  # [B, T, P]
    b, t, p = quantized.shape
    negatives = quantized.reshape(-1, p)[jnp.asarray(sampled_negative_indices).reshape(-1)].reshape(b, t, -1, p)
    targets = jnp.concatenate([quantized[:, :, None], negatives], axis=2)  # [B, T, 1 + K, P]

    def cosine(x, y):
        return jnp.sum(x * y, -1) / jnp.maximum(jnp.linalg.norm(x, axis=-1) * jnp.linalg.norm(y, axis=-1), 1e-8)

    logits = cosine(predicted[:, :, None], targets) / config.contrastive_logits_temperature  # [B, T, 1 + K]
    same = jnp.all(quantized[:, :, None] == negatives, axis=-1)  # a negative equal to the positive is not one
    logits = logits.at[:, :, 1:].set(jnp.where(same, -jnp.inf, logits[:, :, 1:]))
    mask = jnp.asarray(mask_time_indices, bool)
    contrastive = -jnp.sum(jnp.where(mask, jax.nn.log_softmax(logits, axis=-1)[:, :, 0], 0.0))
    num_codevectors = config.num_codevectors_per_group * config.num_codevector_groups
    diversity = (num_codevectors - outputs.codevector_perplexity) / num_codevectors * mask.sum()
    return contrastive + config.diversity_loss_weight * diversity, contrastive, diversity


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
        """Frames the model makes of `input_lengths` samples (4.57's name); `add_adapter` defaults to the
        config's."""
        add_adapter = self.config.add_adapter if add_adapter is None else add_adapter
        return conv_output_lengths(self.config, input_lengths, add_adapter)

    def __call__(self, input_values: Any, attention_mask: Any = None, mask_time_indices: Any = None,
                 params: dict | None = None, dropout_rng: jax.Array | None = None, train: bool = False,
                 output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                 freeze_feature_encoder: bool = False, return_dict: bool | None = None):
        return self._run(input_values, attention_mask, mask_time_indices, params, dropout_rng, train,
                         output_attentions, output_hidden_states, freeze_feature_encoder, return_dict)

    def _run(self, input_values, attention_mask, mask_time_indices, params, dropout_rng, train, output_attentions,
             output_hidden_states, freeze_feature_encoder, return_dict, extra=None, rngs=None):
        values = jnp.asarray(input_values, jnp.float32)
        if values.ndim != 2:
            raise ValueError(f"input_values must be raw audio [batch, samples], got shape {values.shape}; make it "
                             "with Wav2Vec2FeatureExtractor.")
        inputs = {"input_values": values,
                  "attention_mask": None if attention_mask is None else jnp.asarray(attention_mask, "i4"),
                  "mask_time_indices": None if mask_time_indices is None else jnp.asarray(mask_time_indices, bool),
                  "freeze_feature_encoder": freeze_feature_encoder, **(extra or {})}
        return self._apply(inputs, params=params, past_key_values=None, dropout_rng=dropout_rng, train=train,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=return_dict, rngs=rngs)


class FlaxWav2Vec2Model(FlaxWav2Vec2PreTrainedModel):
    module_class = FlaxWav2Vec2Module


class FlaxWav2Vec2ForCTC(FlaxWav2Vec2PreTrainedModel):
    module_class = FlaxWav2Vec2ForCTCModule


class FlaxWav2Vec2ForPreTraining(FlaxWav2Vec2PreTrainedModel):
    module_class = FlaxWav2Vec2ForPreTrainingModule

    def __call__(self, input_values: Any, attention_mask: Any = None, mask_time_indices: Any = None,
                 gumbel_temperature: float = 1.0, params: dict | None = None, dropout_rng: jax.Array | None = None,
                 gumbel_rng: jax.Array | None = None, train: bool = False, output_attentions: bool | None = None,
                 output_hidden_states: bool | None = None, freeze_feature_encoder: bool = False,
                 return_dict: bool | None = None):
        """With `train=True` the codevectors are Gumbel-softmax samples (`gumbel_rng`) at `gumbel_temperature`."""
        if train and gumbel_rng is None:
            raise ValueError("train=True samples codevectors: pass gumbel_rng=jax.random.PRNGKey(...).")
        return self._run(input_values, attention_mask, mask_time_indices, params, dropout_rng, train,
                         output_attentions, output_hidden_states, freeze_feature_encoder, return_dict,
                         extra={"gumbel_temperature": gumbel_temperature},
                         rngs={"gumbel": gumbel_rng} if gumbel_rng is not None else None)


__all__ = ["compute_mask_indices", "FlaxWav2Vec2ForCTC", "FlaxWav2Vec2ForPreTraining", "FlaxWav2Vec2Model", "FlaxWav2Vec2PreTrainedModel",
           "pretraining_loss"]

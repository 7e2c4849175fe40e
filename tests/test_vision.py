"""Every image and image-text class, and the composite encoder-decoders (an image or raw-audio encoder into a
text decoder, which share one implementation), against transformers' PyTorch class on the same tiny
random weights.

A case is a transformers config (images 32x32, patches 8, hidden 32, 2 layers) and its PyTorch class.
transformers builds the model, its constant parameters (norms, layer scales, relative-position tables,
batch-norm statistics, tokens initialised at zero) are randomised so a swapped or ignored weight shows,
and it is saved with `save_pretrained`; the Flax class of the same name loads it. Every output both
sides return is compared, nested ones (CLIP's tower outputs) too. Adding a family adds entries to
`CASES`; its own test file keeps what is its own.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers
from flaxformers.auto import FlaxAutoModel
from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import flatten, flax_to_state_dict
from flaxformers.training.losses import masked_lm_loss, sequence_classification_loss

B, IMAGE, PATCH, T = 2, 32, 8, 7
VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=IMAGE,
           patch_size=PATCH, num_labels=3)
CONV = dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 2], num_labels=3)
TEXT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=16, eos_token_id=98, bos_token_id=97, pad_token_id=1)
STATIC = ("output_attentions", "output_hidden_states", "return_dict", "train")


@dataclass(frozen=True)
class Case:
    config: Callable[[], Any]  # the transformers config
    model: str  # the transformers PyTorch class; ours is "Flax" + model
    inputs: str = "pixels"  # which `INPUTS` builder
    loss: str | None = None  # which `LOSSES` entry: loss and every gradient against PyTorch's
    batch_norm: bool = False  # train=True updates `batch_stats` as PyTorch's running statistics
    attentions: bool = True
    features: bool = False  # get_text_features / get_image_features
    base: bool = False  # tuple outputs, and FlaxAutoModel on the checkpoint (one case a family: compiles cost)
    skip: tuple[str, ...] = ()  # outputs that transformers 5 changed from 4.x's meaning


def _t(name: str, **kwargs) -> Callable[[], Any]:
    return lambda: getattr(transformers, name)(**kwargs)


def _clip(**overrides) -> Callable[[], Any]:
    vision = {k: v for k, v in VIT.items() if k != "num_labels"}
    return _t("CLIPConfig", text_config=TEXT, vision_config=vision, projection_dim=16, **overrides)


GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=16, bos_token_id=97, eos_token_id=98)


def _encoder_decoder(encoder, decoder, composite: str = "VisionEncoderDecoderConfig"):
    config = getattr(transformers, composite).from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id = TEXT["bos_token_id"], TEXT["pad_token_id"]
    return config


SAMPLES = 800  # raw audio: 79 frames from WAV2VEC2's convolutions
WAV2VEC2 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, conv_dim=(16, 16),
                conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                layerdrop=0.0)


def _speech_encoder_decoder(decoder, **encoder):
    return lambda: _encoder_decoder(transformers.Wav2Vec2Config(**WAV2VEC2, **encoder), decoder(),
                                    "SpeechEncoderDecoderConfig")


CASES: dict[str, Case] = {
    "vit": Case(_t("ViTConfig", **VIT), "ViTModel"),
    "vit-cls": Case(_t("ViTConfig", **VIT, qkv_bias=False), "ViTForImageClassification", loss="classification", base=True),
    # per-block relative position bias, mask token. (With use_mean_pooling=False transformers 5.23 swaps the
    # two `layernorm`s of this class when it loads a checkpoint, its own saves included.)
    "beit-mim": Case(_t("BeitConfig", **VIT, vocab_size=50, use_mask_token=True, use_relative_position_bias=True),
                     "BeitForMaskedImageModeling", "pixels+mask", loss="masked-image", base=True),
    # [CLS] pooling after the final layernorm
    "beit": Case(_t("BeitConfig", **VIT, use_mean_pooling=False, use_relative_position_bias=True), "BeitModel"),
    # shared relative position bias, absolute positions, mean pooling, stochastic depth (off in eval)
    "beit-cls": Case(_t("BeitConfig", **VIT, use_shared_relative_position_bias=True, use_absolute_position_embeddings=True,
                        drop_path_rate=0.2), "BeitForImageClassification", loss="classification"),
    "dinov2-cls": Case(_t("Dinov2Config", **{**VIT, "intermediate_size": None}, mlp_ratio=2, layerscale_value=0.5),
                       "Dinov2ForImageClassification", loss="classification", base=True),
    # SwiGLU MLP; a 40x40 image: 5x5 patches against 4x4 learned positions, resized bicubically
    "dinov2-swiglu-resized": Case(_t("Dinov2Config", **{**VIT, "intermediate_size": None}, use_swiglu_ffn=True),
                                  "Dinov2Model", "larger-pixels"),
    "resnet-bottleneck-cls": Case(_t("ResNetConfig", **CONV, layer_type="bottleneck", downsample_in_bottleneck=True),
                                  "ResNetForImageClassification", loss="classification", batch_norm=True, attentions=False, base=True),
    "resnet-basic": Case(_t("ResNetConfig", **CONV, layer_type="basic", hidden_act="gelu"), "ResNetModel",
                         batch_norm=True, attentions=False),
    "regnet-y-cls": Case(_t("RegNetConfig", **CONV, groups_width=4), "RegNetForImageClassification",
                         loss="classification", batch_norm=True, attentions=False, base=True),
    "regnet-x": Case(_t("RegNetConfig", **CONV, groups_width=4, layer_type="x"), "RegNetModel", batch_norm=True,
                     attentions=False),
    # CLIP: padded text pooled at the first end-of-text token, the contrastive loss
    # (transformers 5 puts the projected features in the towers' pooler_output; 4.x the pooled states)
    "clip": Case(_clip(), "CLIPModel", "text+pixels", loss="contrastive", features=True,
                 skip=("text_model_output.pooler_output", "vision_model_output.pooler_output")),
    # a ViT image tower and a BERT text tower in one space
    "dual-encoder-vit-bert": Case(
        lambda: transformers.VisionTextDualEncoderConfig.from_vision_text_configs(
            transformers.ViTConfig(**VIT), transformers.BertConfig(**{**TEXT, "max_position_embeddings": 16}),
            projection_dim=16),
        "VisionTextDualEncoderModel", "text+pixels", loss="contrastive", features=True,
        skip=("text_model_output.pooler_output", "vision_model_output.pooler_output")),
    # an image encoder into a text decoder's cross-attention (4.57's FlaxVisionEncoderDecoderModel)
    "vit-gpt2": Case(lambda: _encoder_decoder(transformers.ViTConfig(**VIT), transformers.GPT2Config(**GPT2)),
                     "VisionEncoderDecoderModel", "pixels+decoder", loss="seq2seq-lm"),
    # widths differ: enc_to_dec_proj maps the encoder states into the decoder's
    "dinov2-bert-projected": Case(
        lambda: _encoder_decoder(transformers.Dinov2Config(**{**VIT, "intermediate_size": None}),
                                 transformers.BertConfig(**{**TEXT, "hidden_size": 48, "intermediate_size": 40})),
        "VisionEncoderDecoderModel", "pixels+decoder"),
    # raw audio (row 1 padded: the decoder attends to its frames only) into a decoder 48 wide: enc_to_dec_proj
    "wav2vec2-gpt2-projected": Case(
        _speech_encoder_decoder(lambda: transformers.GPT2Config(**{**GPT2, "n_embd": 48})),
        "SpeechEncoderDecoderModel", "audio+decoder", loss="seq2seq-lm"),
    # the encoder's adapter projects to the decoder's width (48) and halves the frames twice
    "wav2vec2-adapter-bert": Case(
        _speech_encoder_decoder(lambda: transformers.BertConfig(**{**TEXT, "hidden_size": 48, "intermediate_size": 40}),
                                add_adapter=True, output_hidden_size=48, num_adapter_layers=2,
                                feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
        "SpeechEncoderDecoderModel", "audio+decoder"),
    "clip-text-projection": Case(_t("CLIPTextConfig", **TEXT, projection_dim=16), "CLIPTextModelWithProjection", "text", base=True),
    # legacy configs (eos_token_id 2) pool at the largest token id
    "clip-text-legacy-eos": Case(_t("CLIPTextConfig", **{**TEXT, "eos_token_id": 2}), "CLIPTextModel", "text"),
    "clip-vision": Case(_t("CLIPVisionConfig", **{k: v for k, v in VIT.items() if k != "num_labels"}), "CLIPVisionModel"),
    "clip-vision-projection": Case(_t("CLIPVisionConfig", **{k: v for k, v in VIT.items() if k != "num_labels"},
                                      projection_dim=16), "CLIPVisionModelWithProjection", base=True),
}


# --- inputs ------------------------------------------------------------------------------------------
def _pixels(rng, size: int = IMAGE):
    return {"pixel_values": rng.standard_normal((B, 3, size, size)).astype(np.float32)}


def _pixels_and_mask(rng):
    return {**_pixels(rng), "bool_masked_pos": rng.rand(B, (IMAGE // PATCH) ** 2) < 0.4}


def _text(rng):
    """Row 0 ends in end-of-text at the last position; row 1 is right-padded after it."""
    ids = rng.randint(2, TEXT["bos_token_id"], (B, T)).astype(np.int32)
    ids[:, 0] = TEXT["bos_token_id"]
    ids[0, -1], ids[1, 4], ids[1, 5:] = TEXT["eos_token_id"], TEXT["eos_token_id"], TEXT["pad_token_id"]
    mask = np.ones((B, T), np.int32)
    mask[1, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _pixels_and_decoder(rng):
    return {**_pixels(rng), "decoder_input_ids": rng.randint(2, TEXT["vocab_size"], (B, T)).astype(np.int32)}


def _audio_and_decoder(rng):
    mask = np.ones((B, SAMPLES), np.int32)
    mask[1, 600:] = 0
    return {"inputs": rng.standard_normal((B, SAMPLES)).astype(np.float32), "attention_mask": mask,
            "decoder_input_ids": rng.randint(2, TEXT["vocab_size"], (B, T)).astype(np.int32)}


INPUTS: dict[str, Callable[[np.random.RandomState], dict[str, np.ndarray]]] = {
    "text": _text,
    "text+pixels": lambda rng: {**_text(rng), **_pixels(rng)},
    "pixels": _pixels,
    "pixels+mask": _pixels_and_mask,
    "larger-pixels": lambda rng: _pixels(rng, IMAGE + PATCH),
    "pixels+decoder": _pixels_and_decoder,
    "audio+decoder": _audio_and_decoder,
}


def _torch(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v)) if v.dtype != np.int32 else torch.tensor(v, dtype=torch.long)
            for k, v in inputs.items()}


# --- building --------------------------------------------------------------------------------------------
def _randomise_constants(model: torch.nn.Module) -> None:
    """Norm weights start at 1, biases, layer-scale and relative-position tables at constants: make them
    differ, so a swapped or ignored one changes the outputs."""
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if not tensor.is_floating_point() or tensor.numel() < 2 and "logit_scale" in name:
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif tensor.numel() == 1 or float(tensor.max()) == float(tensor.min()):
                tensor.add_(torch.randn_like(tensor) * 0.3)


@dataclass
class Built:
    name: str
    case: Case
    path: str
    ref: Any
    ours: Any
    forward: Any
    inputs: dict[str, np.ndarray]
    out: Any
    expected: Any


_BUILT: dict[str, Built] = {}


def build(name: str, tmp_path_factory) -> Built:
    if name in _BUILT:
        return _BUILT[name]
    case = CASES[name]
    torch.manual_seed(0)
    config = case.config()
    config._attn_implementation = "eager"  # returns the attention weights
    ref = getattr(transformers, case.model)(config).eval()
    _randomise_constants(ref)
    path = str(tmp_path_factory.mktemp(name))
    ref.save_pretrained(path)
    ours = getattr(flaxformers, "Flax" + case.model).from_pretrained(path)
    static = [a for a in STATIC if a in inspect.signature(ours.__call__).parameters]
    forward = jax.jit(ours.__call__, static_argnames=static)
    inputs = INPUTS[case.inputs](np.random.RandomState(0))
    flags = dict(output_hidden_states=True, output_attentions=True) if case.attentions else dict(output_hidden_states=True)
    out = forward(**inputs, **flags)
    with torch.no_grad():
        expected = ref(**_torch(inputs), **flags)
    _BUILT[name] = built = Built(name, case, path, ref, ours, forward, inputs, out, expected)
    return built


def _per_case(names: list) -> list:
    return [pytest.param(n, marks=pytest.mark.xdist_group(f"vision-{n}")) for n in names]


@pytest.fixture(scope="module")
def built(request, tmp_path_factory) -> Built:
    return build(request.param, tmp_path_factory)


every_case = pytest.mark.parametrize("built", _per_case(list(CASES)), indirect=True)


def _cases_with(flag: str) -> list:
    return _per_case([n for n, c in CASES.items() if getattr(c, flag)])


def _compare(ours: Any, ref: Any, what: str, skip: tuple[str, ...] = ()) -> int:
    """Every output both sides have (tuples elementwise, nested outputs by key) but `skip`; the number compared."""
    if hasattr(ref, "keys") and not hasattr(ref, "shape"):
        count = 0
        for key in ours.keys():
            path = f"{what}.{key}"
            if key in ref.keys() and ref[key] is not None and path.split(".", 1)[1] not in skip:
                count += _compare(ours[key], ref[key], path, skip)
        return count
    if isinstance(ref, tuple | list):
        assert len(ours) == len(ref), f"{what}: {len(ours)} entries, reference {len(ref)}"
        return sum(_compare(a, b, f"{what}[{i}]", skip) for i, (a, b) in enumerate(zip(ours, ref)))
    assert_close(ours, ref, what=what)
    return 1


# --- parity ------------------------------------------------------------------------------------------
@every_case
def test_outputs_hidden_states_attentions_match(built):
    compared = _compare(built.out, built.expected, built.name, built.case.skip)
    assert compared >= 3, f"only {compared} outputs compared"
    assert len(built.out.hidden_states if "hidden_states" in built.out else built.out[-1]) > 1


@pytest.mark.parametrize("built", _cases_with("base"), indirect=True)
def test_tuple_output_and_base_model(built):
    as_tuple = built.forward(**built.inputs, return_dict=False)
    np.testing.assert_array_equal(as_tuple[0], built.out[0])
    base = FlaxAutoModel.from_pretrained(built.path)  # a head checkpoint's base-model prefix is stripped
    ref_base = getattr(transformers, type(base).__name__.removeprefix("Flax")).from_pretrained(built.path)
    with torch.no_grad():
        expected = ref_base.eval()(**_torch(built.inputs))
    assert_close(jax.jit(base.__call__)(**built.inputs)[0], expected[0], what="base model output")


@pytest.mark.parametrize("built", _cases_with("features"), indirect=True)
def test_text_and_image_features(built):
    """get_text_features / get_image_features: the projected pooled states (transformers 5 returns them as
    `pooler_output`)."""
    text = {k: v for k, v in built.inputs.items() if k != "pixel_values"}
    with torch.no_grad():
        expected_text = built.ref.get_text_features(**_torch(text)).pooler_output
        expected_image = built.ref.get_image_features(**_torch({"pixel_values": built.inputs["pixel_values"]}))
    assert_close(jax.jit(built.ours.get_text_features)(**text), expected_text, what="text features")
    assert_close(jax.jit(built.ours.get_image_features)(built.inputs["pixel_values"]), expected_image.pooler_output,
                 what="image features")


# --- checkpoints -------------------------------------------------------------------------------------
@every_case
def test_save_then_load_in_transformers(built, tmp_path):
    built.ours.save_pretrained(tmp_path)
    reloaded, info = type(built.ref).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    with torch.no_grad():
        expected = reloaded.eval()(**_torch(built.inputs))
    assert_close(built.out[0], expected[0], what="transformers reload")


@every_case
def test_msgpack_round_trip(built, tmp_path):
    built.ours.save_pretrained(tmp_path, safe_serialization=False)
    assert io.SAFE_WEIGHTS_NAME not in os.listdir(tmp_path)
    again = type(built.ours).from_pretrained(tmp_path)
    for path, value in flatten(built.ours.params).items():
        np.testing.assert_array_equal(flatten(again.params)[path], value)


# --- training ----------------------------------------------------------------------------------------
def _classification(inputs, rng):
    labels = rng.randint(0, VIT["num_labels"], (B,))
    return {"labels": labels}, {}, lambda out: sequence_classification_loss(out.logits, jnp.asarray(labels))


def _masked_image(inputs, rng):
    """Visual-token labels of the masked patches: PyTorch takes them packed, we score them in place."""
    mask = inputs["bool_masked_pos"]
    labels = rng.randint(0, 50, mask.shape)
    in_place = jnp.asarray(np.where(mask, labels, -100))
    return {"labels": labels[mask]}, {}, lambda out: masked_lm_loss(out.logits, in_place)


def _seq2seq_lm(inputs, rng):
    """Next-token labels of the decoder inputs, some ignored (-100)."""
    labels = rng.randint(0, TEXT["vocab_size"], inputs["decoder_input_ids"].shape)
    labels[:, -2:] = -100
    return {"labels": labels}, {}, lambda out: masked_lm_loss(out.logits, jnp.asarray(labels))


LOSSES: dict[str, Callable] = {
    "classification": _classification,
    "masked-image": _masked_image,
    "seq2seq-lm": _seq2seq_lm,
    "contrastive": lambda inputs, rng: ({"return_loss": True}, {"return_loss": True}, lambda out: out.loss),
}


def _torch_grads(ref: torch.nn.Module, directory) -> dict[str, np.ndarray]:
    """PyTorch's gradients under the checkpoint's names: loaded as weights into a copy and saved."""
    grads = {n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in ref.named_parameters()}
    copy = type(ref)(ref.config)
    copy.load_state_dict(grads, strict=False)
    copy.save_pretrained(directory)
    return io.read_state_dict(os.path.join(directory, io.SAFE_WEIGHTS_NAME))


@pytest.mark.parametrize("name", _cases_with("batch_norm"))
def test_train_mode_updates_batch_stats_as_pytorch(name, tmp_path_factory):
    """train=True normalises with the batch's statistics and returns the running ones, updated as
    PyTorch's BatchNorm2d updates its buffers."""
    built = build(name, tmp_path_factory)
    out, state = built.forward(**built.inputs, train=True)
    assert set(state) == {"batch_stats"}
    ref = copy.deepcopy(built.ref).train()
    with torch.no_grad():
        expected = ref(**_torch(built.inputs))
    assert_close(out[0], expected[0], what="train-mode output")
    model = built.ours
    updated = flax_to_state_dict(flatten({**model.params, **state}), model._conversion_rules(model.config))
    buffers = dict(ref.named_buffers())
    stats = [n for n in updated if n.endswith(("running_mean", "running_var"))]
    assert stats and all(n in buffers for n in stats)
    for name_ in stats:
        assert_close(updated[name_], buffers[name_], what=name_)


@pytest.mark.parametrize("name", _cases_with("loss"))
def test_loss_and_gradients_match(name, tmp_path_factory, tmp_path):
    built = build(name, tmp_path_factory)
    labels, ours_kwargs, loss_of = LOSSES[built.case.loss](built.inputs, np.random.RandomState(1))
    model = built.ours

    def loss_fn(params):
        return loss_of(model(**built.inputs, **ours_kwargs, params=params))

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(model.params)
    built.ref.zero_grad()
    ref_loss = built.ref(**_torch(built.inputs), **{k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v
                                                    for k, v in labels.items()}).loss
    ref_loss.backward()
    assert_close(loss, ref_loss.detach(), what="loss")
    expected = _torch_grads(built.ref, tmp_path)
    ours = flax_to_state_dict({p: np.asarray(g) for p, g in flatten(grads).items()}, model._conversion_rules(model.config))
    statistics = ("running_mean", "running_var", "num_batches_tracked")  # buffers, not parameters
    compared = [n for n in ours if not n.endswith(statistics)]
    assert set(compared) == {n for n in expected if not n.endswith(statistics)}
    for pt_name in compared:
        assert_close(ours[pt_name], expected[pt_name], what=f"grad {pt_name}")

"""Image processors against transformers' Pillow-backend image processors on the same images.

Each case is a transformers processor class (its `...Pil` variant: numpy and Pillow, as ours) with
small sizes, saved with `save_pretrained` and loaded by `AutoImageProcessor`; the images are made
here: odd sizes, portrait and landscape, gray, RGBA, uint8 and float arrays, channels first and last.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import PIL.Image
import pytest
import transformers
from _helpers import clip_tokenizer_dir

import flaxformers
from flaxformers import AutoImageProcessor, AutoProcessor


def _images() -> dict[str, object]:
    rng = np.random.RandomState(0)
    alpha = rng.randint(0, 256, (40, 41, 4), dtype=np.uint8)
    return {
        "rgb-landscape": PIL.Image.fromarray(rng.randint(0, 256, (37, 53, 3), dtype=np.uint8)),
        "rgb-portrait-array": rng.randint(0, 256, (45, 33, 3), dtype=np.uint8),
        "float-channels-first": rng.rand(3, 50, 70).astype(np.float32),
        "gray": PIL.Image.fromarray(rng.randint(0, 256, (61, 29), dtype=np.uint8)),
        "rgba": PIL.Image.fromarray(alpha),
        "rgba-array": alpha,
        "gray-array": rng.randint(0, 256, (30, 34, 1), dtype=np.uint8),
    }


IMAGES = _images()
RGB = ("rgb-landscape", "rgb-portrait-array", "float-channels-first")
# transformers class (its Pil variant is the reference) and the options it is saved with
CASES = {
    "vit": ("ViTImageProcessor", {"size": {"height": 30, "width": 26}}),
    "beit-crop": ("BeitImageProcessor", {"size": {"height": 30, "width": 30}, "do_center_crop": True,
                                         "crop_size": {"height": 24, "width": 20}}),
    "dinov2": ("BitImageProcessor", {"size": {"shortest_edge": 32}, "crop_size": {"height": 28, "width": 28}}),
    "clip": ("CLIPImageProcessor", {"size": 32, "crop_size": 30}),
    # the crop larger than the resized image: padded with zeros, as transformers pads
    "clip-crop-larger": ("CLIPImageProcessor", {"size": 20, "crop_size": {"height": 24, "width": 40}}),
    "convnext-crop-pct": ("ConvNextImageProcessor", {"size": {"shortest_edge": 30}, "crop_pct": 0.8}),
    "convnext-square": ("ConvNextImageProcessor", {"size": {"shortest_edge": 384}}),
    "vit-gray-to-rgb": ("ViTImageProcessor", {"size": {"height": 24, "width": 24}, "do_convert_rgb": True,
                                              "resample": 3}),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    name, options = CASES[request.param]
    ref = getattr(transformers, name + "Pil")(**options)
    directory = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(directory)
    return request.param, ref, AutoImageProcessor.from_pretrained(directory), str(directory)


def _check_equal(ours, expected, what: str) -> None:
    assert len(ours) == len(expected), what
    for i, (a, b) in enumerate(zip(ours, expected)):
        assert a.dtype == np.float32 and a.shape == b.shape, f"{what}[{i}]: {a.dtype} {a.shape} vs {b.shape}"
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0, err_msg=f"{what}[{i}]")


def test_pixel_values_equal_transformers(pair):
    case, ref, ours, _ = pair
    assert type(ours).__name__ == CASES[case][0]
    rgb = ref.do_convert_rgb
    names = list(IMAGES) if rgb else list(RGB)
    images = [IMAGES[n] for n in names]
    _check_equal(ours(images)["pixel_values"], ref(images)["pixel_values"], case)
    batch = ours(images[:2], return_tensors="np").pixel_values
    assert isinstance(batch, np.ndarray) and batch.ndim == 4
    np.testing.assert_array_equal(batch, ref(images[:2], return_tensors="np")["pixel_values"])


def test_call_options_override_the_config(pair):
    """Options given to a call win over the processor's, for that call only."""
    case, ref, ours, _ = pair
    image = IMAGES["rgb-landscape"]
    options = {"do_normalize": False, "resample": 0}
    options["size"] = {"shortest_edge": 25} if "shortest_edge" in ours.size else {"height": 19, "width": 23}
    _check_equal(ours(image, **options)["pixel_values"], ref(image, **options)["pixel_values"], case)
    _check_equal(ours(image)["pixel_values"], ref(image)["pixel_values"], case)


def test_save_pretrained_loads_in_transformers(pair, tmp_path):
    case, _, ours, _ = pair
    ours.save_pretrained(tmp_path)
    again = transformers.AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    assert type(again).__name__ == CASES[case][0] + "Pil"
    image = IMAGES["rgb-portrait-array"]
    _check_equal(ours(image)["pixel_values"], again(image)["pixel_values"], case)


def test_legacy_configs(tmp_path):
    """A feature extractor's config (an int size, no do_rescale) and one that names no class, whose
    class comes from config.json's model_type, as transformers reads them."""
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "ViTFeatureExtractor", "do_resize": True, "size": 24, "resample": 2,
        "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}))
    untyped = tmp_path / "untyped"
    untyped.mkdir()
    transformers.Dinov2Config().save_pretrained(untyped)
    (untyped / "preprocessor_config.json").write_text(json.dumps({"size": {"shortest_edge": 26}, "crop_size": 20}))
    images = [IMAGES[n] for n in RGB]
    for directory, name in ((legacy, "ViTImageProcessor"), (untyped, "BitImageProcessor")):
        ours = AutoImageProcessor.from_pretrained(directory)
        ref = transformers.AutoImageProcessor.from_pretrained(directory, backend="pil")
        assert type(ours).__name__ == name and type(ref).__name__ == name + "Pil"
        _check_equal(ours(images)["pixel_values"], ref(images)["pixel_values"], name)
    assert isinstance(flaxformers.ViTImageProcessor.from_pretrained(untyped), flaxformers.ViTImageProcessor)


def test_paths_and_jax_arrays(tmp_path):
    ours, ref = flaxformers.CLIPImageProcessor(size=28, crop_size=28), transformers.CLIPImageProcessorPil(
        size=28, crop_size=28)
    paths = []
    for name, fmt in (("rgb-landscape", "PNG"), ("rgba", "PNG"), ("gray", "JPEG")):
        paths.append(str(tmp_path / f"{name}.{fmt.lower()}"))
        IMAGES[name].save(paths[-1], format=fmt)
    expected = ref(paths, return_tensors="np")["pixel_values"]
    np.testing.assert_allclose(ours(paths, return_tensors="np")["pixel_values"], expected, atol=1e-6, rtol=0)
    pixels = ours(paths, return_tensors="jax").pixel_values
    assert isinstance(pixels, jax.Array)
    np.testing.assert_allclose(np.asarray(pixels), expected, atol=1e-6, rtol=0)


def test_text_and_images_processor(tmp_path):
    """AutoProcessor on a CLIP checkpoint: CLIP's real tokenizer and the image processor under one call."""
    clip_tokenizer_dir(tmp_path)
    tokenizer = transformers.CLIPTokenizer.from_pretrained(tmp_path)
    ref = transformers.CLIPProcessor(image_processor=transformers.CLIPImageProcessorPil(size=24, crop_size=24),
                                     tokenizer=tokenizer)
    ref.save_pretrained(tmp_path)
    ours = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(ours, flaxformers.Processor)
    texts, images = ["a photo of a cat", "two dogs"], [IMAGES["rgb-landscape"], IMAGES["rgba"]]
    out = ours(text=texts, images=images, padding=True)
    expected = ref(text=texts, images=images, padding=True, return_tensors="np")
    assert set(out) == {"input_ids", "attention_mask", "pixel_values"}
    for key in out:
        np.testing.assert_allclose(out[key], expected[key], atol=1e-6, rtol=0, err_msg=key)
    assert isinstance(flaxformers.CLIPProcessor.from_pretrained(tmp_path).image_processor, flaxformers.CLIPImageProcessor)


def test_clear_errors(tmp_path):
    vit = flaxformers.ViTImageProcessor(size=24)
    with pytest.raises(TypeError, match="unknown options.*crop_pct"):
        vit(IMAGES["rgb-landscape"], crop_pct=0.5)
    with pytest.raises(ValueError, match="do_convert_rgb=True"):
        vit(IMAGES["rgba"])  # four channels, three means: as transformers, ViT keeps the image's channels
    with pytest.raises(ValueError, match="different shapes"):
        vit([IMAGES["rgb-landscape"], IMAGES["rgb-portrait-array"]], do_resize=False, return_tensors="np")
    with pytest.raises(ValueError, match="input_data_format"):
        vit(np.zeros((10, 11, 12), np.uint8))
    with pytest.raises(ValueError, match="return_tensors='pt'"):
        vit(IMAGES["rgb-landscape"], return_tensors="pt")
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_processor_type": "SamImageProcessor"}))
    with pytest.raises(ValueError, match="'SamImageProcessor' is not supported.*CLIPImageProcessor"):
        AutoImageProcessor.from_pretrained(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="no preprocessor_config.json"):
        AutoImageProcessor.from_pretrained(tmp_path / "empty")


@pytest.mark.parametrize("name", sorted({name for name, _ in CASES.values()}))
def test_class_defaults_equal_transformers(name):
    """What a config leaves out: every option's default equals transformers 5's class of the same name."""
    ours, expected = getattr(flaxformers, name)(), getattr(transformers, name + "Pil")()
    for option in ours.option_names():
        value = getattr(expected, option)
        if isinstance(value, tuple | list):
            value = list(value)
        elif option in ("size", "crop_size") and value is not None:
            value = dict(value)
        assert ours.to_dict()[option] == value, option

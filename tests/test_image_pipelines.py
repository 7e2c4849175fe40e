"""The image pipelines against transformers' on the same weights: the same outputs, the same shapes.

Tiny random models saved by transformers' PyTorch classes with their image processors (and CLIP's real
tokenizer); images are made here and given as paths, PIL images and arrays. The reference is
transformers 5's pipeline of the same task.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
import transformers
from _helpers import assert_close, tiny_clip_dir
from test_pipelines import assert_same

from flaxformers.pipelines import pipeline

VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32,
           patch_size=8, initializer_range=0.5)  # wide weights: well-separated scores
LABELS = {0: "cat", 1: "dog", 2: "parrot", 3: "teapot"}


def _save_vit(directory, head: str, **config) -> str:
    torch.manual_seed(0)
    getattr(transformers, head)(transformers.ViTConfig(**VIT, **config)).eval().save_pretrained(directory)
    transformers.ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, object]:
    """A landscape PNG path, a portrait RGBA PIL image and an [H, W, 3] uint8 array."""
    rng = np.random.RandomState(0)
    path = str(tmp_path_factory.mktemp("images") / "landscape.png")
    PIL.Image.fromarray(rng.randint(0, 256, (40, 57, 3), dtype=np.uint8)).save(path)
    return {"path": path, "pil": PIL.Image.fromarray(rng.randint(0, 256, (50, 37, 4), dtype=np.uint8)),
            "array": rng.randint(0, 256, (36, 36, 3), dtype=np.uint8)}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    directory = _save_vit(tmp_path_factory.mktemp("vit-cls"), "ViTForImageClassification", id2label=LABELS)
    # no task: it is read from the checkpoint's architectures
    return pipeline(model=directory), transformers.pipeline("image-classification", model=directory, device="cpu")


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    directory = _save_vit(tmp_path_factory.mktemp("vit"), "ViTModel")
    return (pipeline("image-feature-extraction", model=directory),
            transformers.pipeline("image-feature-extraction", model=directory, device="cpu"))


@pytest.fixture(scope="module")
def zero_shot(tmp_path_factory):
    directory = tiny_clip_dir(tmp_path_factory.mktemp("clip"))
    return (pipeline("zero-shot-image-classification", model=directory),
            transformers.pipeline("zero-shot-image-classification", model=directory, device="cpu"))


@pytest.mark.parametrize("options", [{}, {"top_k": 2}, {"function_to_apply": "sigmoid"}, {"top_k": 9}])
def test_image_classification(classifier, images, options):
    ours, ref = classifier
    assert_same(ours(images["path"], **options), ref(images["path"], **options))
    batch = [images["path"], images["pil"], images["array"]]
    assert_same(ours(batch, batch_size=2, **options), ref(batch, **options))


def test_image_feature_extraction(extractor, images):
    ours, ref = extractor
    assert_same(ours(images["pil"]), ref(images["pil"]))
    assert_same(ours([images["path"], images["pil"]], pool=True), ref([images["path"], images["pil"]], pool=True))
    tensor = ours(images["path"], return_tensors=True)
    assert isinstance(tensor, np.ndarray) and tensor.shape == (1, 17, 32)  # [1, patches + CLS, D]
    assert_close(tensor, ref(images["path"], return_tensors=True), what="return_tensors")


@pytest.mark.parametrize("options", [{}, {"hypothesis_template": "a drawing of a {}"}])
def test_zero_shot_image_classification(zero_shot, images, options):
    ours, ref = zero_shot
    labels = ["a cat", "two dogs on a sofa", "a teapot"]
    assert_same(ours(images["path"], candidate_labels=labels, **options),
                ref(images["path"], candidate_labels=labels, **options))
    batch = [images["path"], images["pil"]]
    assert_same(ours(images=batch, candidate_labels=labels[:2], **options),
                ref(batch, candidate_labels=labels[:2], **options))


def test_task_inference_and_errors(classifier, extractor, zero_shot, images):
    ours = classifier[0]
    assert ours.task == "image-classification"
    with pytest.raises(ValueError, match="needs images"):
        ours()
    with pytest.raises(TypeError, match="unknown arguments.*candidate_labels"):
        ours(images["path"], candidate_labels=["x"])
    with pytest.raises(ValueError, match="needs candidate_labels"):
        zero_shot[0](images["path"])
    with pytest.raises(ValueError, match="No pooled output"):
        pipeline("image-feature-extraction", model=ours.model, image_processor=ours.image_processor)(
            images["path"], pool=True)

"""Wav2Vec2 against transformers' PyTorch classes on tiny random checkpoints (2 layers, hidden 32).

Three variants: wav2vec2-base's (group norm on the first convolution, post-norm layers), the "stable
layer norm" one of the large models (layer norm on every convolution, pre-norm layers, conv bias), and
one with the adapter of speech encoder-decoders (projected to another width, then strided GLU
convolutions: fewer frames out).
Row 1 of the batch is padded, so the frame mask and the masked positions are checked too.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers
from flaxformers.checkpoints.convert import flatten
from flaxformers.training.losses import ctc_loss

SAMPLES = 800
TINY = dict(vocab_size=12, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
            conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4, pad_token_id=0, layerdrop=0.0, codevector_dim=8, proj_codevector_dim=6,
            num_codevectors_per_group=5)
VARIANTS = {"base": {}, "stable": dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
            "adapter": dict(add_adapter=True, output_hidden_size=24, num_adapter_layers=2)}
AUDIO = np.random.RandomState(0).normal(size=(2, SAMPLES)).astype(np.float32)
MASK = np.ones((2, SAMPLES), np.int32)
MASK[1, 600:] = 0
LABELS = np.array([[3, 4, 4, 5, 6, 2, 7], [8, 9, 1, 3, -100, -100, -100]])

_BUILT: dict[str, tuple] = {}


def _torch(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x))


def build(name: str, tmp_path_factory) -> tuple:
    """transformers' ForCTC saved (norms randomised), both sides loaded, one forward each."""
    if name in _BUILT:
        return _BUILT[name]
    torch.manual_seed(0)
    ref = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**TINY, **VARIANTS[name])).eval()
    with torch.no_grad():
        for pname, p in ref.named_parameters():
            if "norm" in pname and "parametrizations" not in pname:
                p.normal_(1.0 if "weight" in pname else 0.0, 0.5)
    path = str(tmp_path_factory.mktemp(f"wav2vec2-{name}"))
    ref.save_pretrained(path)
    ref = transformers.Wav2Vec2ForCTC.from_pretrained(path, attn_implementation="eager").eval()
    ours = flaxformers.FlaxAutoModelForCTC.from_pretrained(path)
    assert type(ours) is flaxformers.FlaxWav2Vec2ForCTC
    out = ours(AUDIO, attention_mask=MASK, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        expected = ref(_torch(AUDIO), attention_mask=_torch(MASK), output_hidden_states=True, output_attentions=True)
    _BUILT[name] = built = (path, ref, ours, out, expected)
    return built


@pytest.fixture(scope="module", params=list(VARIANTS))
def built(request, tmp_path_factory):
    return build(request.param, tmp_path_factory)


def test_logits_hidden_states_attentions_match(built):
    _, _, _, out, expected = built
    assert_close(out.logits, expected.logits, what="logits")
    for field in ("hidden_states", "attentions"):
        ours, ref = getattr(out, field), getattr(expected, field)
        assert len(ours) == len(ref), field
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_close(a, b, what=f"{field}[{i}]")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_ctc_loss_matches(built, reduction):
    """transformers' CTC loss: frames from the sample mask, -100 label padding, blank = pad_token_id."""
    _, ref, ours, out, _ = built
    ref.config.ctc_loss_reduction = reduction
    with torch.no_grad():
        expected = ref(_torch(AUDIO), attention_mask=_torch(MASK), labels=_torch(LABELS)).loss
    frames = flaxformers.models.wav2vec2.modeling.frame_mask(ours.config, out.logits.shape[1], MASK,
                                                             ours.config.add_adapter)
    loss = ctc_loss(out.logits, frames, LABELS, blank_id=ours.config.pad_token_id, reduction=reduction)
    assert_close(loss, expected, what=f"ctc loss ({reduction})")


def test_base_model_matches(built, tmp_path):
    path = built[0]
    ref = transformers.Wav2Vec2Model.from_pretrained(path, attn_implementation="eager").eval()
    ref.save_pretrained(tmp_path)
    ours = flaxformers.FlaxWav2Vec2Model.from_pretrained(tmp_path)
    out = ours(AUDIO, attention_mask=MASK)
    with torch.no_grad():
        expected = ref(_torch(AUDIO), attention_mask=_torch(MASK))
    assert_close(out.last_hidden_state, expected.last_hidden_state, what="last_hidden_state")
    assert_close(out.extract_features, expected.extract_features, what="extract_features")


@pytest.mark.parametrize("name", [n for n, v in VARIANTS.items() if not v.get("add_adapter")])
def test_pretraining_outputs_and_loss_match(name, tmp_path_factory, tmp_path):
    """Quantised targets (argmax codevectors), perplexity over the masked frames, and the contrastive plus
    diversity loss against sampled negatives (pre-training has no adapter: it predicts the encoder's frames)."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import _sample_negative_indices

    from flaxformers.models.wav2vec2.modeling import pretraining_loss

    built = build(name, tmp_path_factory)
    torch.manual_seed(2)
    ref = transformers.Wav2Vec2ForPreTraining.from_pretrained(built[0], attn_implementation="eager").eval()
    with torch.no_grad():  # spread the codebook choices (the tiny model's logits favour a few)
        ref.quantizer.weight_proj.weight.normal_(0, 3.0)
    ref.save_pretrained(tmp_path)
    ours = flaxformers.FlaxAutoModelForPreTraining.from_pretrained(tmp_path)
    assert type(ours) is flaxformers.FlaxWav2Vec2ForPreTraining
    frames = built[3].logits.shape[1]
    masked = np.random.RandomState(3).rand(2, frames) < 0.4
    negatives = _sample_negative_indices((2, frames), 4, mask_time_indices=masked.astype(np.int64))
    with torch.no_grad():
        expected = ref(_torch(AUDIO), attention_mask=_torch(MASK), mask_time_indices=_torch(masked),
                       sampled_negative_indices=_torch(negatives))
    out = ours(AUDIO, attention_mask=MASK, mask_time_indices=masked)
    for field in ("projected_states", "projected_quantized_states", "codevector_perplexity"):
        assert_close(getattr(out, field), getattr(expected, field), what=field)
    loss, contrastive, diversity = pretraining_loss(ours.config, out, masked, negatives)
    assert_close(contrastive, expected.contrastive_loss, what="contrastive loss")
    assert_close(diversity, expected.diversity_loss, what="diversity loss")
    assert_close(loss, expected.loss, what="loss")


def test_save_then_load_in_transformers_and_msgpack(built, tmp_path):
    _, _, ours, out, _ = built
    ours.save_pretrained(tmp_path / "pt")
    reloaded, info = transformers.Wav2Vec2ForCTC.from_pretrained(tmp_path / "pt", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    with torch.no_grad():
        expected = reloaded.eval()(_torch(AUDIO), attention_mask=_torch(MASK)).logits
    assert_close(out.logits, expected, what="transformers reload")
    ours.save_pretrained(tmp_path / "msgpack", safe_serialization=False)
    again = type(ours).from_pretrained(tmp_path / "msgpack")
    for key, value in flatten(ours.params).items():
        np.testing.assert_array_equal(flatten(again.params)[key], value)


def test_feature_extractor_matches_transformers():
    from flaxformers import Wav2Vec2FeatureExtractor

    audio = [AUDIO[0] * 0.3 + 0.1, AUDIO[1, :500]]
    for settings in ({"return_attention_mask": True}, {"return_attention_mask": False}):
        ref = transformers.Wav2Vec2FeatureExtractor(**settings)
        expected = ref(audio, sampling_rate=16000, padding=True, return_tensors="np")
        got = Wav2Vec2FeatureExtractor(**settings)(audio, sampling_rate=16000, padding=True)
        assert_close(got["input_values"], expected["input_values"], what=f"input_values {settings}")
        assert set(got) == set(expected)
        if "attention_mask" in expected:
            np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"])


def test_ctc_tokenizer_matches_transformers(tmp_path):
    from flaxformers import Wav2Vec2CTCTokenizer

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "B": 6, "C": 7, "L": 8, "O": 9}
    with open(tmp_path / "vocab.json", "w") as f:
        json.dump(vocab, f)
    ref = transformers.Wav2Vec2CTCTokenizer(os.fspath(tmp_path / "vocab.json"))
    ref.save_pretrained(tmp_path)
    ours = Wav2Vec2CTCTokenizer.from_pretrained(tmp_path)
    assert ours("ALL COOL")["input_ids"] == ref("ALL COOL").input_ids
    frames = np.array([[0, 5, 5, 0, 8, 0, 8, 4, 4, 7, 9, 9, 0, 9, 8, 0, 2], [1, 6, 6, 3, 0, 4, 5, 0, 0, 0, 0, 0, 0, 0,
                                                                          0, 0, 0]])
    for skip in (False, True):
        assert ours.batch_decode(frames, skip_special_tokens=skip) == ref.batch_decode(frames,
                                                                                       skip_special_tokens=skip)


def test_ctc_pipeline_matches_transformers(tmp_path_factory, tmp_path):
    """pipeline("automatic-speech-recognition") on a CTC checkpoint directory (model, vocab.json,
    preprocessor_config.json): greedy per-frame ids, decoded."""
    import shutil

    path = build("base", tmp_path_factory)[0]
    shutil.copytree(path, tmp_path, dirs_exist_ok=True)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: 5 + i for i, c in enumerate("ABCDEFG")}}
    with open(tmp_path / "vocab.json", "w") as f:
        json.dump(vocab, f)
    transformers.Wav2Vec2CTCTokenizer(os.fspath(tmp_path / "vocab.json")).save_pretrained(tmp_path)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path)
    audio = [AUDIO[0], AUDIO[1]]  # one length: the second reuses the first's compiled operations
    expected = transformers.pipeline("automatic-speech-recognition", model=os.fspath(tmp_path))(audio)
    assert flaxformers.pipeline("automatic-speech-recognition", model=tmp_path)(audio) == expected


def test_time_masks_are_transformers_draws():
    """The same numpy seed gives transformers' SpecAugment spans, within each row's frames."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

    from flaxformers import compute_mask_indices

    frames = np.ones((3, 50), np.int64)
    frames[1, 30:] = 0
    for prob, length, min_masks in ((0.3, 4, 2), (0.05, 10, 2), (0.9, 3, 0)):
        np.random.seed(7)
        expected = _compute_mask_indices((3, 50), prob, length, attention_mask=torch.tensor(frames), min_masks=min_masks)
        got = compute_mask_indices((3, 50), prob, length, attention_mask=frames, min_masks=min_masks,
                                   rng=np.random.RandomState(7))
        np.testing.assert_array_equal(got, expected)
        assert not got[1, 30:].any() and got.any()

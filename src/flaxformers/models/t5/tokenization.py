"""T5's tokenizer from `spiece.model` (a SentencePiece Unigram model), for checkpoints without tokenizer.json.

As transformers 5's T5Tokenizer converts it: the model's pieces and its normalization, whitespace split and
the `▁` Metaspace, then `extra_ids` sentinels `<extra_id_{n-1}>` ... `<extra_id_0>` after the pieces (so
`<extra_id_0>` has the last id), `A </s>` and `A </s> B </s>`. mT5 and LongT5 use it too.
"""

from __future__ import annotations

import os
from typing import Any

from tokenizers import AddedToken, processors

from flaxformers.tokenizers import Tokenizer, special_tokens_from_config
from flaxformers.tokenizers.sentencepiece import added_tokens, pieces, read_model, unigram_backend

T5_SPECIAL_TOKENS = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}


def t5_tokenizer(model_file: str | os.PathLike, tokenizer_config: dict[str, Any] | None = None,
                 **kwargs: Any) -> Tokenizer:
    config = dict(tokenizer_config or {})
    extra_ids = kwargs.pop("extra_ids", config.get("extra_ids", 100))
    options = {**T5_SPECIAL_TOKENS, **special_tokens_from_config(config), **kwargs}
    model = read_model(model_file)
    sentinels = [f"<extra_id_{i}>" for i in reversed(range(extra_ids))]
    backend = unigram_backend(model, [*pieces(model), *((s, 0.0) for s in sentinels)])
    backend.add_special_tokens([AddedToken(options[k], special=True, normalized=False) for k in T5_SPECIAL_TOKENS])
    backend.add_tokens(added_tokens(model))
    backend.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in reversed(sentinels)])
    eos = options["eos_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, backend.token_to_id(eos))])
    return Tokenizer(backend, **options)


__all__ = ["t5_tokenizer"]

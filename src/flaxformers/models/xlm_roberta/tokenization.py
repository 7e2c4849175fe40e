"""XLM-RoBERTa's tokenizer from `sentencepiece.bpe.model` (a SentencePiece Unigram model).

As transformers' XLMRobertaTokenizerFast: fairseq's ids (`<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3, then
the model's pieces from its fourth on, `<mask>` last), `<s> A </s>` and `<s> A </s></s> B </s>`, no
segment ids.
"""

from __future__ import annotations

import os
from typing import Any

from tokenizers import AddedToken, processors

from flaxformers.models.roberta.tokenization import ROBERTA_SPECIAL_TOKENS
from flaxformers.tokenizers import Tokenizer, special_tokens_from_config
from flaxformers.tokenizers.sentencepiece import pieces, read_model, unigram_backend


def xlm_roberta_tokenizer(model_file: str | os.PathLike, tokenizer_config: dict[str, Any] | None = None,
                          **kwargs: Any) -> Tokenizer:
    config = dict(tokenizer_config or {})
    add_prefix_space = kwargs.pop("add_prefix_space", config.get("add_prefix_space", True))
    options = {**ROBERTA_SPECIAL_TOKENS, **special_tokens_from_config(config), **kwargs}
    model = read_model(model_file)
    bos, pad, eos, unk, mask = (options[k] for k in ("bos_token", "pad_token", "eos_token", "unk_token", "mask_token"))
    vocab = [(bos, 0.0), (pad, 0.0), (eos, 0.0), (unk, 0.0), *pieces(model)[3:], (mask, 0.0)]
    backend = unigram_backend(model, vocab, unk_id=3, add_prefix_space=add_prefix_space)
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t in dict.fromkeys((bos, pad, eos, unk, mask))])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, backend.token_to_id(bos)), (eos, backend.token_to_id(eos))],
    )
    return Tokenizer(backend, **options)


__all__ = ["xlm_roberta_tokenizer"]

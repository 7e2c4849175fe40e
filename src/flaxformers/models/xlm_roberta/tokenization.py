"""XLM-RoBERTa's tokenizer from `sentencepiece.bpe.model` (written in the SentencePiece step)."""

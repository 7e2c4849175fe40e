"""BigBird's tokenizer from `spiece.model` (written in the SentencePiece step)."""

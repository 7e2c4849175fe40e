"""Model families, one package each; `flaxformers.registry` finds them by their `FAMILY` declaration."""

"""The family registry: what generic code knows about a model family, declared by the family itself.

Each package `flaxformers/models/<family>/` defines `FAMILY = Family(...)` in its `__init__.py`:
its model types with their config and head classes (the Auto mapping), its public names, its
sharding rules, its GGUF architectures and its tokenizer hints. The generic layers (Auto classes,
package exports, sharding, GGUF loading, tokenizers) read these declarations and never name a
family, so a new family is one new package.

Declarations are plain data (class names are strings), so reading them imports neither jax nor
any family's modeling code.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

FAMILIES_PACKAGE = "flaxformers.models"

# Auto tasks: the `FlaxAutoModelFor...` class of each (transformers 4.57's Flax Auto classes).
AUTO_TASKS: dict[str, str] = {
    "base": "FlaxAutoModel",
    "causal-lm": "FlaxAutoModelForCausalLM",
    "masked-lm": "FlaxAutoModelForMaskedLM",
    "pretraining": "FlaxAutoModelForPreTraining",
    "next-sentence-prediction": "FlaxAutoModelForNextSentencePrediction",
    "sequence-classification": "FlaxAutoModelForSequenceClassification",
    "multiple-choice": "FlaxAutoModelForMultipleChoice",
    "token-classification": "FlaxAutoModelForTokenClassification",
    "question-answering": "FlaxAutoModelForQuestionAnswering",
    "seq2seq-lm": "FlaxAutoModelForSeq2SeqLM",
    "image-classification": "FlaxAutoModelForImageClassification",
    "vision2seq": "FlaxAutoModelForVision2Seq",
    "speech-seq2seq": "FlaxAutoModelForSpeechSeq2Seq",
    # 4.57 had these mappings (its FLAX_MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING) without Flax Auto classes
    "audio-classification": "FlaxAutoModelForAudioClassification",
    "ctc": "FlaxAutoModelForCTC",
}


@dataclass(frozen=True)
class ModelType:
    """One `config.json` `model_type`: its config class and its head classes by Auto task."""

    config: str
    heads: Mapping[str, str]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.heads) - set(AUTO_TASKS))
        if unknown:
            raise ValueError(f"ModelType({self.config}): unknown Auto tasks {unknown}; expected {sorted(AUTO_TASKS)}.")


@dataclass(frozen=True)
class TokenizerHint:
    """How to build a family's tokenizer.

    `files` are the legacy files (for a checkpoint without `tokenizer.json`) that `builder` reads (the
    first is the one looked for); `builder` is `"module:function"` called as
    `builder(*paths, *optional_paths, tokenizer_config, **kwargs)`. `adapt`, when set, is `"module:function"` called as
    `adapt(tokenizer, tokenizer_config, **options)` on a tokenizer built from `tokenizer.json`, for
    what the file does not say (e.g. language codes). `classes` are the `tokenizer_class` names of
    `tokenizer_config.json` that mean this family's tokenizer. With `by_files=False` the hint is used
    only by class or `model_type`, never because its files are there (files another family's
    tokenizer also has).
    """

    files: tuple[str, ...] = ()
    builder: str | None = None
    # Files the builder reads when they are there (passed after `files`, None when absent).
    optional_files: tuple[str, ...] = ()
    # The model types (of the family) whose checkpoints use this hint by `model_type`; empty: all of them.
    model_types: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    adapt: str | None = None
    # Whether the family's tokenizer returns `token_type_ids` (transformers' `model_input_names`); None: as its
    # post-processor assigns segments. Applies to a `tokenizer.json` of a checkpoint of this family too.
    token_type_ids: bool | None = None
    by_files: bool = True

    def load(self) -> Any:
        return _function(self.builder)

    def load_adapt(self) -> Any:
        return _function(self.adapt)


def _function(spec: str) -> Any:
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


@dataclass(frozen=True)
class Family:
    """Everything generic code needs to know about one model family."""

    name: str  # the package name under flaxformers.models
    model_types: Mapping[str, ModelType]
    # submodule (relative to the family package) -> public names it defines
    exports: Mapping[str, tuple[str, ...]]
    # (regex on the '/'-joined param path, mesh axis per dimension: "data" | "fsdp" | "tensor" | None | tuple)
    partition_rules: tuple[tuple[str, tuple], ...] = ()
    # submodule defining `GGUF_ARCHITECTURES` (`general.architecture` -> GGUFArchitecture), read on first use
    gguf: str | None = None
    # One hint, or several (e.g. a model type with its own tokenizer: see TokenizerHint.model_types).
    tokenizer: TokenizerHint | tuple[TokenizerHint, ...] | None = None
    # the image processor class of its images (an exported `processors.ImageProcessor` subclass, this or another
    # family's), for checkpoints whose preprocessor_config.json names none
    image_processor: str | None = None

    @property
    def tokenizers(self) -> tuple[TokenizerHint, ...]:
        hints = self.tokenizer
        return () if hints is None else hints if isinstance(hints, tuple) else (hints,)

    def tokenizer_for(self, model_type: str) -> TokenizerHint | None:
        """The hint of `model_type`'s checkpoints: the one naming it, else the first naming no model type."""
        hints = [h for h in self.tokenizers if model_type in h.model_types] or \
                [h for h in self.tokenizers if not h.model_types]
        return hints[0] if hints else None

    @property
    def package(self) -> str:
        return f"{FAMILIES_PACKAGE}.{self.name}"

    def gguf_architectures(self) -> Mapping[str, Any]:
        if self.gguf is None:
            return {}
        return importlib.import_module(f"{self.package}.{self.gguf}").GGUF_ARCHITECTURES

    def export_modules(self) -> dict[str, str]:
        """Public name -> absolute module path, for the package's lazy `__getattr__`."""
        return {name: f"{self.package}.{module}" for module, names in self.exports.items() for name in names}


# --- discovery -------------------------------------------------------------------------------------
@cache
def families() -> tuple[Family, ...]:
    """Every family: the packages under `flaxformers.models` that declare `FAMILY`."""
    package = importlib.import_module(FAMILIES_PACKAGE)
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.ispkg and not info.name.startswith("_"):
            module = importlib.import_module(f"{FAMILIES_PACKAGE}.{info.name}")
            family = getattr(module, "FAMILY", None)
            if not isinstance(family, Family):
                raise TypeError(f"{module.__name__} declares no `FAMILY = Family(...)`.")
            found.append(family)
    _check_unique(found)
    return tuple(found)


def _check_unique(found: list[Family]) -> None:
    for what, keys in (
        ("model_type", lambda f: f.model_types),
        ("public name", lambda f: f.export_modules()),
    ):
        owner: dict[str, str] = {}
        for family in found:
            for key in keys(family):
                if key in owner:
                    raise ValueError(f"{what} {key!r} is declared by both {owner[key]!r} and {family.name!r}.")
                owner[key] = family.name


def model_types() -> dict[str, tuple[Family, ModelType]]:
    return {name: (family, entry) for family in families() for name, entry in family.model_types.items()}


def lookup(model_type: str) -> tuple[Family, ModelType]:
    """The family and entry of a `model_type`, with a clear error for unknown ones."""
    table = model_types()
    if model_type not in table:
        raise ValueError(
            f"model_type={model_type!r} is not supported; flaxformers knows {sorted(table)}. "
            "Check config.json's `model_type`."
        )
    return table[model_type]


def resolve(family: Family, name: str) -> Any:
    """A public object of a family by name (imports its module on first use)."""
    module = family.export_modules().get(name)
    if module is None:
        raise ValueError(f"{name!r} is not exported by the {family.name!r} family.")
    return getattr(importlib.import_module(module), name)


def exports() -> dict[str, str]:
    """Every family's public name -> its family package (which resolves it lazily)."""
    return {name: family.package for family in families() for name in family.export_modules()}


@cache
def gguf_architectures() -> dict[str, Any]:
    """`general.architecture` -> GGUFArchitecture, over every family (imports their GGUF tables)."""
    table: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for family in families():
        for arch, spec in family.gguf_architectures().items():
            if arch in owner:
                raise ValueError(f"GGUF architecture {arch!r} is declared by both {owner[arch]!r} and {family.name!r}.")
            table[arch], owner[arch] = spec, family.name
    return table


def partition_rules() -> dict[str, tuple[tuple[str, tuple], ...]]:
    """model_type -> its family's rules."""
    return {name: family.partition_rules for name, (family, _) in model_types().items()}


def tokenizer_hints() -> list[tuple[Family, TokenizerHint]]:
    return [(family, hint) for family in families() for hint in family.tokenizers]


def export(name: str) -> Any:
    """A public object of any family by name, or None when no family exports it."""
    package = exports().get(name)
    return None if package is None else getattr(importlib.import_module(package), name)


__all__ = [
    "AUTO_TASKS", "Family", "ModelType", "TokenizerHint", "export", "exports", "families", "gguf_architectures", "lookup",
    "model_types", "partition_rules", "resolve", "tokenizer_hints",
]

"""A family is one package: the generic layers name none, and a new package is all a family needs."""

from __future__ import annotations

import ast
import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tokenize

import pytest

import flaxformers
from flaxformers import registry
from flaxformers.modeling_utils import FlaxPreTrainedModel

SRC = os.path.dirname(flaxformers.__file__)
# The layers every family goes through: they read the registry and must not know any family.
GENERIC = ["nn", "checkpoints", "generation", "training", "tokenizers", "auto.py", "registry.py", "__init__.py",
           "modeling_utils.py", "modeling_vision.py", "modeling_seq2seq.py", "configuration_utils.py", "outputs.py",
           "embeddings.py", "processors", "_lazy.py", "pipelines", "encoder_models.py"]


def _family_words() -> set[str]:
    """Family names, one-word model types, and the first word of others when it names a model (gemma3_text)."""
    words = {family.name for family in registry.families()}
    for name in registry.model_types():
        first, *rest = re.split(r"[^a-z0-9]+", name.lower())
        if not rest or re.search(r"\d", first):
            words.add(first)
    return words


# Identifiers whose parts read as a family name but mean something else: optax's optimizer state.
NOT_FAMILY_NAMES = {"opt_state"}


def _code_words(path: str) -> list[tuple[int, str]]:
    """(line, word) of every identifier part (split at `_`) and string-literal word, docstrings and
    comments left out."""
    source = open(path, encoding="utf-8").read()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            docstrings.add(node.lineno)
    out = []
    previous: list[str] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        numpy_function = previous[-2:] in (["np", "."], ["jnp", "."])  # np.clip is numpy's, not the CLIP family
        if token.type in (tokenize.NAME, tokenize.STRING) and token.start[0] not in docstrings and not (
                numpy_function or token.string in NOT_FAMILY_NAMES):
            separators = r"[^a-z0-9]+" if token.type == tokenize.NAME else r"[^a-z0-9_]+"
            text = token.string.lower().replace("llama.cpp", "")  # the GGUF tool's name, not the family
            out += [(token.start[0], w) for w in re.split(separators, text) if w]
        previous = (previous + [token.string])[-2:]
    return out


def _generic_files() -> list[str]:
    files = []
    for entry in GENERIC:
        path = os.path.join(SRC, entry)
        if os.path.isfile(path):
            files.append(path)
        for root, _, names in os.walk(path):
            files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".py")]
    return files


def test_generic_layers_name_no_family():
    words = _family_words()
    assert {"gpt2", "gemma", "bloom", "bert"} <= words
    hits = [f"{os.path.relpath(path, SRC)}:{line}: {word}"
            for path in _generic_files() for line, word in _code_words(path) if word in words]
    assert not hits, "generic code names a family:\n" + "\n".join(hits)


def test_the_scan_can_fail(tmp_path):
    path = tmp_path / "generic.py"
    path.write_text('"""Docstrings may say gpt2."""\n# comments too: bloom\nrules = {"gemma": 1}\ngpt2_tokenizer = 2\n'
                    'low = np.clip(x, 0, 1)\nclip = 3\n')
    assert [w for _, w in _code_words(str(path)) if w in _family_words()] == ["gemma", "gpt2", "clip"]


def test_every_declaration_resolves():
    for model_type, (family, entry) in registry.model_types().items():
        config_cls = registry.resolve(family, entry.config)
        assert model_type in config_cls.accepted_model_types(), (model_type, config_cls)
        for task, name in entry.heads.items():
            cls = registry.resolve(family, name)
            assert issubclass(cls, FlaxPreTrainedModel) and issubclass(config_cls, cls.config_class), (task, name)
            assert getattr(flaxformers, name) is cls
        for pattern, axes in family.partition_rules:
            re.compile(pattern)
            assert all(a in (None, "data", "fsdp", "tensor") or isinstance(a, tuple) for a in axes), pattern
    for arch, spec in registry.gguf_architectures().items():
        assert spec.model_type in registry.model_types(), arch
    assert set(registry.exports()) <= set(flaxformers.__all__)


# A whole family in one package: config, a small causal LM on the shared layers, and its declaration.
TOY_FAMILY = {
    "__init__.py": '''
        from flaxformers._lazy import lazy_exports
        from flaxformers.registry import Family, ModelType

        FAMILY = Family(
            name="toyfam",
            model_types={"toyfam": ModelType("ToyConfig", {"base": "FlaxToyModel", "causal-lm": "FlaxToyForCausalLM"})},
            exports={"configuration": ("ToyConfig",), "modeling": ("FlaxToyModel", "FlaxToyForCausalLM")},
            partition_rules=((r"embed/embedding$", ("tensor", "fsdp")), (r"qkv/kernel$", ("fsdp", "tensor"))),
        )
        __getattr__, __dir__ = lazy_exports(__name__, FAMILY.export_modules())
        __all__ = sorted(FAMILY.export_modules())
    ''',
    "configuration.py": '''
        from flaxformers.configuration_utils import PretrainedConfig

        class ToyConfig(PretrainedConfig):
            model_type = "toyfam"

            def __init__(self, vocab_size=50, hidden_size=16, num_attention_heads=2, num_hidden_layers=2,
                         max_position_embeddings=32, eos_token_id=1, pad_token_id=0, **kwargs):
                self.vocab_size, self.hidden_size = vocab_size, hidden_size
                self.num_attention_heads, self.num_hidden_layers = num_attention_heads, num_hidden_layers
                self.max_position_embeddings = max_position_embeddings
                super().__init__(eos_token_id=eos_token_id, pad_token_id=pad_token_id, **kwargs)
    ''',
    "modeling.py": '''
        import flax.linen as nn
        import jax.numpy as jnp

        from flaxformers.modeling_utils import FlaxPreTrainedModel
        from flaxformers.models.toyfam.configuration import ToyConfig
        from flaxformers.nn.attention import AttentionSpec, self_attention
        from flaxformers.nn.layers import tied_logits
        from flaxformers.nn.stack import LayerStack
        from flaxformers.outputs import FlaxBaseModelOutput, FlaxCausalLMOutput

        class Block(nn.Module):
            config: ToyConfig
            dtype: jnp.dtype = jnp.float32
            layer_idx: int = 0

            @nn.compact
            def __call__(self, hidden, mask, deterministic=True, init_cache=False, output_attentions=False):
                b, t, d = hidden.shape
                n = self.config.num_attention_heads
                q, k, v = jnp.split(nn.Dense(3 * d, name="qkv")(hidden).reshape(b, t, 3 * n, d // n), 3, axis=2)
                out, w = self_attention(self, q, k, v, AttentionSpec(scale=(d // n) ** -0.5), mask,
                                        init_cache=init_cache)
                return hidden + out.reshape(b, t, d), w, None

        class ToyModule(nn.Module):
            config: ToyConfig
            dtype: jnp.dtype = jnp.float32
            head: bool = False

            @nn.compact
            def __call__(self, input_ids, attention_mask, position_ids=None, deterministic=True, init_cache=False,
                         output_attentions=False, output_hidden_states=False, return_dict=True):
                cfg = self.config
                embed = nn.Embed(cfg.vocab_size, cfg.hidden_size, name="embed")
                hidden, _, _, _ = LayerStack(Block, cfg.num_hidden_layers, {"config": cfg}, name="layers")(
                    embed(input_ids), (attention_mask,), deterministic, init_cache)
                if self.head:
                    return FlaxCausalLMOutput(logits=tied_logits(hidden, embed.embedding, self.dtype))
                return FlaxBaseModelOutput(last_hidden_state=hidden)

        class FlaxToyModel(FlaxPreTrainedModel):
            config_class = ToyConfig
            module_class = ToyModule

            def __call__(self, input_ids, attention_mask=None, position_ids=None, params=None,
                         past_key_values=None, dropout_rng=None, train=False, output_attentions=None,
                         output_hidden_states=None, return_dict=None):
                inputs = self._token_inputs(input_ids, attention_mask, position_ids, past_key_values)
                return self._apply(inputs, params=params, past_key_values=past_key_values, dropout_rng=None,
                                   train=False, output_attentions=None, output_hidden_states=None,
                                   return_dict=return_dict)

        class ToyLMModule(ToyModule):
            head: bool = True

        class FlaxToyForCausalLM(FlaxToyModel):
            module_class = ToyLMModule
            is_causal_lm = True
    ''',
}

TOY_CHECKS = '''
import numpy as np
import flaxformers
from flaxformers import AutoConfig, FlaxAutoModelForCausalLM, registry
from flaxformers.training.sharding import PARTITION_RULES

assert flaxformers.__file__.startswith(SRC), flaxformers.__file__
assert "toyfam" in registry.model_types() and "FlaxToyForCausalLM" in flaxformers.__all__
config = AutoConfig.for_model("toyfam")
model = FlaxAutoModelForCausalLM.from_config(config)
assert type(model) is flaxformers.FlaxToyForCausalLM
assert [p for p, _ in PARTITION_RULES["toyfam"]] == ["embed/embedding$", "qkv/kernel$"]
model.save_pretrained(OUT)
again = FlaxAutoModelForCausalLM.from_pretrained(OUT)
out = again.generate(np.array([[3, 4, 5]]), max_new_tokens=4)
assert out.sequences.shape == (1, 7), out.sequences.shape
print("toy family ok")
'''


def test_a_new_family_is_one_package(tmp_path):
    """A copy of the package plus one new `models/toyfam/` works through Auto, exports, save/load,
    generate and sharding: no other file is touched."""
    shutil.copytree(SRC, tmp_path / "src" / "flaxformers", ignore=shutil.ignore_patterns("__pycache__"))
    package = tmp_path / "src" / "flaxformers" / "models" / "toyfam"
    package.mkdir()
    for name, text in TOY_FAMILY.items():
        (package / name).write_text(textwrap.dedent(text))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "src"), *sys.path])}
    code = f"OUT = {str(tmp_path / 'saved')!r}\nSRC = {str(tmp_path / 'src')!r}\n" + TOY_CHECKS
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "toy family ok" in result.stdout


def test_duplicate_declarations_are_refused():
    family = registry.families()[0]
    with pytest.raises(ValueError, match="declared by both"):
        registry._check_unique([family, family])

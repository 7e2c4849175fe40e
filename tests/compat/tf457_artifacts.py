"""Run under transformers 4.57.6 (its own venv, .venv-tf457): write Flax checkpoints and outputs to compare.

usage: python tf457_artifacts.py SPEC.json OUT_DIR
SPEC is a list of {"name", "model_class", "config_class", "config", "inputs": {arg: nested list}}.
For each, OUT_DIR/name/ gets save_pretrained() msgpack files, outputs.npz (the model's outputs on the inputs,
flattened by field name) and cache.json (the init_cache tree: path -> [shape, dtype]) for causal LMs.
"""

import json
import os
import sys

import numpy as np
import transformers
from flax.traverse_util import flatten_dict


def main(spec_path: str, out_dir: str) -> None:
    with open(spec_path) as f:
        specs = json.load(f)
    with open(os.path.join(out_dir, "flax_names.json"), "w") as f:  # the public names a drop-in must export
        json.dump(sorted(n for n in dir(transformers) if n.startswith("Flax")), f)
    for spec in specs:
        config = getattr(transformers, spec["config_class"])(**spec["config"])
        model = getattr(transformers, spec["model_class"])(config, seed=spec.get("seed", 0))
        target = os.path.join(out_dir, spec["name"])
        model.save_pretrained(target)
        inputs = {k: np.asarray(v) for k, v in spec["inputs"].items()}
        outputs = model(**inputs, output_hidden_states=True)
        arrays = {}
        for key, value in outputs.items():
            if isinstance(value, tuple):
                for i, item in enumerate(value):
                    arrays[f"{key}.{i}"] = np.asarray(item)
            elif value is not None:
                arrays[key] = np.asarray(value)
        np.savez(os.path.join(target, "outputs.npz"), **arrays)
        if hasattr(model, "init_cache") and spec.get("cache"):
            cache = flatten_dict(model.init_cache(*spec["cache"]), sep="/")
            with open(os.path.join(target, "cache.json"), "w") as f:
                json.dump({k: [list(v.shape), str(v.dtype)] for k, v in cache.items()}, f)
        if spec.get("generate"):
            gen = model.generate(inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                                 **spec["generate"])
            np.save(os.path.join(target, "generated.npy"), np.asarray(gen.sequences))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

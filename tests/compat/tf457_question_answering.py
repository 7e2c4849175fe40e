"""Run transformers 4.57.6's question-answering pipeline (transformers 5 removed it) with PyTorch on a checkpoint.

usage: python tf457_question_answering.py MODEL_DIR CALLS.json OUT.json
CALLS is a list of {"args": [...], "kwargs": {...}}; OUT gets the pipeline's output for each call.
It runs with torch from the main venv and transformers 4.57.6 from .venv-tf457 first on PYTHONPATH.
"""

import json
import sys

import transformers


def main(model_dir: str, calls_path: str, out_path: str) -> None:
    if transformers.__version__ != "4.57.6":
        raise SystemExit(f"expected transformers 4.57.6, got {transformers.__version__} from {transformers.__file__}")
    answerer = transformers.pipeline("question-answering", model=model_dir, tokenizer=model_dir, framework="pt",
                                     device="cpu")
    with open(calls_path) as f:
        calls = json.load(f)
    outputs = [answerer(*call["args"], **call["kwargs"]) for call in calls]
    with open(out_path, "w") as f:
        json.dump(outputs, f)


if __name__ == "__main__":
    main(*sys.argv[1:])

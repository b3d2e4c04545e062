#!/usr/bin/env bash
# Create .venv (if missing) and install splitattn with its test dependencies.
# torch/torchvision are pinned to the releases this project is tested with; pip takes them from a
# local wheel cache where one is configured, otherwise from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
.venv/bin/pip install --quiet -e ".[test]"

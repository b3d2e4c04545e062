#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: what CI runs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check src tests
# Two workers, one thread each (tests/conftest.py): about twice as fast as one process on two cores.
.venv/bin/python -m pytest -q -n 2 --dist load "$@"

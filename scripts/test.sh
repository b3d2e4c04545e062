#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: what CI runs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check src tests
# Two workers, one thread each (tests/conftest.py): about twice as fast as one process on two cores.
if [ "$#" -gt 0 ]; then
    .venv/bin/python -m pytest -q -n 2 --dist load "$@"
    exit
fi
# The int8 tests in fresh worker processes of their own: inductor's int8 compile, and even the
# training of their fixture, segfaulted in a worker that had run the deploy, export and detection
# tests before (reproduced in one process; never in a fresh one; the cause is not found yet).
.venv/bin/python -m pytest -q -n 2 --dist load --ignore tests/test_quantize.py
.venv/bin/python -m pytest -q -n 2 --dist load tests/test_quantize.py

#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: what CI runs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check src tests benchmarks hubconf.py
# The documentation site, strictly: a broken link or anchor, a missing API object or a docstring
# warning fails (mkdocs.yml), into a scratch folder so nothing is left in the work tree.
site_dir=$(mktemp -d)
# (Not --quiet: it hides the warnings from --strict too, and the build then passes with them.)
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --site-dir "$site_dir"
rm -rf "$site_dir"
# Two workers, one thread each (tests/conftest.py): about twice as fast as one process on two cores.
.venv/bin/python -m pytest -q -n 2 --dist load "$@"

"""Settings for the whole test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # scripts/test.sh runs the suite in two worker processes on two cores: each worker, and every
    # process a test starts, gets one thread. A second thread per worker only spins against the other
    # worker (on a busy 2-core machine that made training steps several times slower, not faster).
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Path:
    """The built-in digits (``train/`` and ``val/`` of 32 px PNGs), written once per test process.

    Many modules train, calibrate or evaluate on them and none writes into them, so one copy
    serves all (each writing its own cost seconds per module). tests/test_data.py checks the
    writer itself in folders of its own."""
    from splitattn.data import prepare_digits

    return prepare_digits(tmp_path_factory.mktemp("data") / "digits")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the minutes-long tests first: with two workers, a long test picked up last would run
    alone at the end while the other worker sits idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: otherwise in order

"""Shared pieces of the detection and segmentation tests: small settings, a thread limit, run helpers."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from splitattn import create_model
from splitattn.detection.models import DETECTOR_SIZES
from splitattn.weights import save_state_dict

FAMILIES = ("resnest14d", "seresnet18", "skresnet18")  # ResNeSt, SE, SK: the smallest of each

# torchvision's detectors at toy scale: 64 px images and the "small" detector (the README's too).
SMALL_DETECTOR = dict(min_size=64, max_size=64, **DETECTOR_SIZES["small"])


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: at 64 px the work per op is too small to share, and a second
    thread spinning against other processes on a busy 2-core machine made steps 5-20x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def classification_checkpoint(name: str, path: Path) -> dict[str, torch.Tensor]:
    """An ImageNet-style classifier checkpoint with non-trivial BN statistics, saved to ``path``."""
    from .reference import randomize_  # here, not at the top: it needs timm, the other helpers do not

    torch.manual_seed(1)
    state = randomize_(create_model(name), seed=1).state_dict()
    save_state_dict(state, path)
    return state


def assert_backbone_matches(checkpoint: dict[str, torch.Tensor], body_state: dict[str, torch.Tensor]) -> None:
    """Every backbone tensor of the checkpoint is in the model unchanged (the classifier is dropped)."""
    expected = {k: v for k, v in checkpoint.items()
                if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    kept = {k: v for k, v in body_state.items() if not k.endswith("num_batches_tracked")}
    assert set(kept) == set(expected)
    for key, value in kept.items():
        assert torch.equal(value, expected[key]), key


def tensorboard_events(run_dir: Path):
    """The TensorBoard event files of a run, read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def one_thread_env() -> dict[str, str]:
    """The environment of a command-line run in a subprocess: one thread, as ``one_thread`` in-process."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def signal_when_written(path: Path, process: subprocess.Popen, sig: int, timeout: float = 300) -> threading.Thread:
    """Send ``sig`` to ``process`` as soon as ``path`` exists (a run's first checkpoint), from a thread,
    so that the test can work meanwhile. If the process ends first, nothing is sent."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if path.is_file():
                process.send_signal(sig)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def assert_same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    """Bit-identical state dicts: every tensor ``torch.equal``."""
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, f"{len(different)} of {len(first)} tensors differ, e.g. {different[:3]}"

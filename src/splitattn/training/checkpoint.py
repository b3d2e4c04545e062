"""Training checkpoints: everything needed to continue a run exactly, written atomically."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..weights.checkpoint_io import atomic_write, load_checkpoint_file

LAST = "last.pth"
BEST = "best.pth"


def capture_rng() -> dict[str, Any]:
    """Every generator's state, as tensors and plain values so ``weights_only`` loading accepts it."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state["numpy"] = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write via a temporary file and rename: a crash mid-write leaves the previous file intact."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def remove_partial_writes(directory: Path) -> int:
    """Delete temporary files left by writes that were killed half way; returns how many."""
    stale = list(directory.glob(".*.partial"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training checkpoint without unpickling code (``torch.load(weights_only=True)``)."""
    return load_checkpoint_file(path)

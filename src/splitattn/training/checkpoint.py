"""Training checkpoints: everything needed to continue a run exactly, written atomically.

The shared training loop (``training.loop``) writes every task's resumable ``last.pth`` with the
one function here, ``save_training_state``: the model, optimiser, scheduler and grad-scaler
states, where the loop is (``step`` and ``data_position``: pass, batches done in it), every
generator's state (``rng``) and the task's extras (``config``, class names; classification also
names the place as ``epoch`` and ``step_in_epoch``), read back with ``load_checkpoint`` and
``restore_training_state``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SplitattnError
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


# What every training state holds, whoever wrote it; a caller's position and extras add to these.
STATE_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng")


def training_state(model: nn.Module, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler | None, scaler: torch.amp.GradScaler,
                   position: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything a training loop needs to continue exactly where it is, as one checkpoint dict.

    ``position`` says where the loop is (e.g. ``{"epoch": 2, "step_in_epoch": 0}`` or
    ``{"step": 300, "data_position": [1, 12]}``); ``extra`` is what else the file should hold (the
    config, class names, EMA weights...). Neither may use the ``STATE_KEYS``. The generators'
    states (``capture_rng``) are taken last, as they are when the file is written.
    """
    clash = sorted(set(STATE_KEYS) & (set(position) | set(extra or {})))
    if clash:
        raise SplitattnError(f"a training state's position and extras cannot use its own keys {clash}")
    return {**(extra or {}), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None, "scaler": scaler.state_dict(),
            **position, "rng": capture_rng()}


def save_training_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: torch.optim.lr_scheduler.LRScheduler | None, scaler: torch.amp.GradScaler, *,
                        position: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Path:
    """``training_state(...)`` written atomically to ``path`` (``save_checkpoint``); returns ``path``."""
    return save_checkpoint(training_state(model, optimizer, scheduler, scaler, position, extra), path)


def restore_training_state(state: Mapping[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                           scheduler: torch.optim.lr_scheduler.LRScheduler | None,
                           scaler: torch.amp.GradScaler) -> None:
    """Load a saved training state's weights, optimiser, scheduler and scaler into the live objects.

    The position and generator states are the caller's to use: a loop restores the generators
    (``restore_rng``) only once it has skipped to where the state was saved.
    """
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])


def remove_partial_writes(directory: Path) -> int:
    """Delete temporary files left by writes that were killed half way; returns how many."""
    stale = list(directory.glob(".*.partial"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training checkpoint without unpickling code (``torch.load(weights_only=True)``)."""
    return load_checkpoint_file(path)

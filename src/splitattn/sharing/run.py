"""A finished training run directory, read back: its model, settings, metrics and curves."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SplitattnError
from ..training.checkpoint import BEST, LAST
from ..training.inference import TrainedModel, load_trained
from ..training.metrics import read_jsonl

METRICS = "metrics.jsonl"
CURVES = "curves.png"


@dataclass
class RunRecord:
    """What ``splitattn train`` left in a run directory."""

    directory: Path
    checkpoint: Path
    trained: TrainedModel
    metrics: list[dict[str, Any]]  # one record per epoch
    curves: Path | None

    @property
    def config(self) -> dict[str, Any]:
        return self.trained.config

    @property
    def best(self) -> dict[str, Any] | None:
        """The epoch whose weights the checkpoint holds (the best validation top-1), if recorded."""
        if not self.metrics:
            return None
        return max(self.metrics, key=lambda r: r.get("val_top1", float("-inf")))


def read_run(directory: str | os.PathLike) -> RunRecord:
    """The best checkpoint (else the last) of a run directory, with its metrics and curves."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SplitattnError(f"run directory {str(directory)!r} does not exist")
    checkpoint = next((directory / name for name in (BEST, LAST) if (directory / name).is_file()), None)
    if checkpoint is None:
        raise SplitattnError(f"{directory} holds neither {BEST} nor {LAST}: is it the output directory of "
                             "splitattn train?")
    metrics_path = directory / METRICS
    curves = directory / CURVES
    return RunRecord(directory=directory, checkpoint=checkpoint, trained=load_trained(checkpoint),
                     metrics=read_jsonl(metrics_path) if metrics_path.is_file() else [],
                     curves=curves if curves.is_file() else None)

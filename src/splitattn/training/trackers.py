"""Experiment trackers as data: ``--log tensorboard``, ``wandb``, ``mlflow``, or several (``tensorboard,wandb``).

``metrics.jsonl`` is always written; a tracker is where a run is *watched*. Each is one class with
the small :class:`Tracker` interface (per-step values, evaluation metrics, pictures, artefacts),
listed in :data:`TRACKERS` with the package it needs, so a fourth tool is one row and one file.
The training commands (``train``, ``train-det``, ``train-seg``) talk to a :class:`RunTrackers`,
which passes every call on to each tracker asked for.

What can go wrong with a tracker is checked before any data are read (:func:`check_log`): a name
that is not one, a package that is not installed, an MLflow server that does not answer, W&B
online without a login. After an hour of training is the wrong time to find out. A resumed run
continues the tool's own run where the tool allows it: the ids are kept in ``RUN_DIR/trackers.json``.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, MissingPackageError, one_of

JSONL = "jsonl"  # metrics.jsonl only: it is always written, so it names no tracker
IDS_FILE = "trackers.json"  # each tracker's id of the run, for a resumed run to continue
FINISHED, STOPPED, FAILED = "finished", "stopped", "failed"  # how a run ended, as close() is told


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker is opened with.

    ``start_step`` is 0 for a new run and the checkpoint's step for a resumed one; ``run_id`` the
    tracker's own id of the run being resumed (None: start a new one).
    """

    directory: Path
    config: dict[str, Any]
    start_step: int = 0
    run_id: str | None = None

    @property
    def resumed(self) -> bool:
        return self.start_step > 0


class Tracker:
    """One tool's view of a run. Every method does nothing by default: a tool implements what it has.

    ``run_id`` is what continues this run when it is resumed (None: the tool keeps no such id).
    """

    run_id: str | None = None

    def step(self, values: Mapping[str, float], step: int) -> None:
        """Per-step values (``train/loss``, its parts, ``train/lr``) at optimiser step ``step``."""

    def metrics(self, values: Mapping[str, float], step: int, epoch: int | None = None) -> None:
        """Evaluation metrics at step ``step``, at the end of ``epoch`` for runs counted in epochs."""

    def image(self, tag: str, image: torch.Tensor | np.ndarray, step: int, epoch: int | None = None) -> None:
        """A picture (predictions on validation images): (3, H, W) or (H, W, 3/4), floats in [0, 1] or uint8."""

    def artefact(self, path: Path, kind: str, step: int, epoch: int | None = None) -> None:
        """A file of the run: ``curves`` (curves.png, after each epoch) or ``checkpoint`` (the model, at the end)."""

    def flush(self) -> None:
        """Write out what is buffered (the end of an epoch)."""

    def close(self, status: str = FINISHED) -> None:
        """End the tool's run: ``finished``, ``stopped`` (by a signal; it can be resumed) or ``failed``."""


@dataclass(frozen=True)
class TrackerKind:
    """One ``--log`` name: the package it needs, where its class lives and what checks it before a run.

    ``module`` is a module of ``splitattn.training`` holding ``cls`` (a :class:`Tracker` with a
    ``from_run(TrackedRun)`` constructor) and, when the tool can fail before training, ``preflight``:
    a function that raises a :class:`~splitattn.errors.ConfigError` saying why.
    """

    name: str
    package: str  # the import name
    pip: str  # what pip installs it as, beside the extra
    module: str
    cls: str
    preflight: str | None
    purpose: str  # for --help

    def load(self, attribute: str) -> Any:
        """``attribute`` of the tracker's module, imported now (so its package is imported only when asked for).

        Args:
            attribute: ``cls`` or ``preflight``.
        """
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), attribute)


TRACKERS: dict[str, TrackerKind] = {kind.name: kind for kind in (
    TrackerKind("tensorboard", "tensorboard", "tensorboard", "tensorboard", "TensorBoardLog", None,
                "TensorBoard event files in RUN_DIR/tensorboard"),
    TrackerKind("wandb", "wandb", "wandb", "wandb_log", "WandbLog", "check_wandb",
                "Weights & Biases (WANDB_PROJECT, default splitattn; WANDB_MODE=offline writes RUN_DIR/wandb only)"),
    TrackerKind("mlflow", "mlflow", "mlflow-skinny", "mlflow_log", "MlflowLog", "check_mlflow",
                "MLflow at MLFLOW_TRACKING_URI (else MLflow's default store), experiment MLFLOW_EXPERIMENT_NAME "
                "(default splitattn)"),
)}
LOGS = (JSONL, *TRACKERS)  # the names --log takes, alone or comma-separated


def log_help(where: str = "RUN_DIR") -> str:
    """The ``--log`` help text of every training command.

    Args:
        where: how the command's help names the run directory (``RUN_DIR``, ``OUTPUT``).
    """
    tools = "; ".join(f"{name}: {kind.purpose}" for name, kind in TRACKERS.items())
    return (f"where to log the run besides {where}/metrics.jsonl (always written): {tools}. Several: "
            f"tensorboard,wandb. Each needs its extra: pip install 'splitattn[NAME]'").replace("RUN_DIR", where)


def parse_log(log: str | Sequence[str] | None) -> tuple[TrackerKind, ...]:
    """The trackers a ``log`` setting names (``"jsonl"``, ``"tensorboard"``, ``"tensorboard,wandb"``), in order.

    Args:
        log: the setting; a comma-separated string or a list (YAML), ``jsonl`` meaning none.
    """
    names = log.split(",") if isinstance(log, str) else list(log or ())
    table = {JSONL: None, **TRACKERS}
    kinds: list[TrackerKind] = []
    for name in (str(n).strip() for n in names):
        kind = one_of(table, name, "log (a tracker, or several comma-separated)") if name else None
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def check_log(log: str | Sequence[str] | None, preflight: bool = True) -> tuple[TrackerKind, ...]:
    """The trackers ``log`` names, each importable and (``preflight``) usable; raises before a run starts.

    Args:
        log: the run's ``log`` setting (see :func:`parse_log`).
        preflight: also check what can be checked without a run (a server answers, W&B has a
            login); the process that logs (rank 0) does, the others need not.
    """
    kinds = parse_log(log)
    for kind in kinds:
        try:
            importlib.import_module(kind.package)
        except ImportError:
            raise MissingPackageError(f"--log {kind.name} needs the {kind.package} package, which is not installed: "
                                      f"pip install 'splitattn[{kind.name}]' (or pip install {kind.pip})") from None
        if preflight and kind.preflight is not None:
            kind.load(kind.preflight)()
    return kinds


def picture(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """An image as (H, W, 3) uint8, whichever layout and range it came in.

    Args:
        image: as :meth:`Tracker.image` takes it.
    """
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = array.transpose(1, 2, 0)
    array = array[..., :3]
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def finite(values: Mapping[str, Any]) -> dict[str, float]:
    """The values that are numbers and finite: a tool's chart has no place for None or NaN.

    Args:
        values: metric names and values, some perhaps None, NaN or not numbers.
    """
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


class RunTrackers(Tracker):
    """The trackers of one run: every call goes to each; ``trackers.json`` keeps their ids for a resume."""

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        self.trackers = list(trackers)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def step(self, values: Mapping[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.step(values, step)

    def metrics(self, values: Mapping[str, float], step: int, epoch: int | None = None) -> None:
        for tracker in self.trackers:
            tracker.metrics(values, step, epoch)

    def image(self, tag: str, image: torch.Tensor | np.ndarray, step: int, epoch: int | None = None) -> None:
        for tracker in self.trackers:
            tracker.image(tag, image, step, epoch)

    def artefact(self, path: Path, kind: str, step: int, epoch: int | None = None) -> None:
        if Path(path).is_file():
            for tracker in self.trackers:
                tracker.artefact(Path(path), kind, step, epoch)

    def flush(self) -> None:
        for tracker in self.trackers:
            tracker.flush()

    def close(self, status: str = FINISHED) -> None:
        """Close every tracker, even when one fails to (the first failure is raised after)."""
        failure = None
        for tracker in self.trackers:
            try:
                tracker.close(status)
            except Exception as error:  # close the others first
                failure = failure or error
        self.trackers = []
        if failure is not None:
            raise failure


def open_trackers(kinds: Sequence[TrackerKind], directory: str | Path, config: dict[str, Any],
                  start_step: int = 0) -> RunTrackers:
    """Open the trackers ``kinds`` for the run in ``directory`` (the process that logs only).

    Args:
        kinds: from :func:`check_log`.
        directory: the run directory; ``trackers.json`` there holds the tools' run ids.
        config: the run's resolved settings, logged as its parameters.
        start_step: the step a resumed run continues from (0: a new run, which starts new tool runs).
    """
    directory = Path(directory)
    ids_path = directory / IDS_FILE
    saved = json.loads(ids_path.read_text()) if start_step > 0 and ids_path.is_file() else {}
    opened: list[Tracker] = []
    try:
        for kind in kinds:
            run = TrackedRun(directory, config, start_step, saved.get(kind.name))
            opened.append(kind.load(kind.cls).from_run(run))
    except BaseException:
        RunTrackers(opened).close(FAILED)
        raise
    ids = {kind.name: tracker.run_id for kind, tracker in zip(kinds, opened, strict=True) if tracker.run_id}
    if ids:
        directory.mkdir(parents=True, exist_ok=True)
        ids_path.write_text(json.dumps({**saved, **ids}, indent=2) + "\n")
    return RunTrackers(opened)


def no_output_error(log: str) -> ConfigError:
    """The error of a run that asks for trackers but has no directory to write their files into.

    Args:
        log: the run's ``log`` setting.
    """
    return ConfigError(f"log={log!r} needs an output directory (the run directory the trackers write into)")

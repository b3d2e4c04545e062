"""``--log wandb``: a run in Weights & Biases, written by ``wandb`` (an optional extra:
``pip install 'splitattn[wandb]'``).

W&B's own settings decide where the run goes, as for any W&B user: ``WANDB_PROJECT`` (default
``splitattn``), ``WANDB_ENTITY``, ``WANDB_MODE=offline`` (the run stays in ``RUN_DIR/wandb``, for
``wandb sync`` later), ``WANDB_API_KEY`` or ``wandb login``. The run is named after the run directory
and holds the config, the per-step losses and learning rate (x axis: the optimiser step), the
per-epoch metrics (x axis: ``epoch``), the curves and prediction pictures, and the best checkpoint
as a ``model`` artifact. A resumed run continues the same W&B run (its id is kept in
``RUN_DIR/trackers.json``; ``resume="allow"``); steps W&B has already seen are dropped by W&B.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .trackers import FAILED, FINISHED, TrackedRun, Tracker, finite, picture

OFFLINE_MODES = ("offline", "dryrun", "disabled")
DEFAULT_PROJECT = "splitattn"


def check_wandb() -> None:
    """Online W&B needs a login: refused now, with the ways to give one, rather than at the run's start."""
    import wandb

    if os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES:
        return
    try:
        wandb.login(verify=False)  # reads WANDB_API_KEY / ~/.netrc; asks only on a terminal
    except Exception as error:  # wandb.errors.UsageError: no key and nothing to ask on
        raise ConfigError(f"--log wandb: not logged in to Weights & Biases ({error}). Run `wandb login`, set "
                          f"WANDB_API_KEY, or set WANDB_MODE=offline to keep the run in RUN_DIR/wandb and "
                          f"`wandb sync` it later") from None


class WandbLog(Tracker):
    """One W&B run; see the module's docstring for what goes where."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.run_id = run.id

    @classmethod
    def from_run(cls, run: TrackedRun) -> WandbLog:
        import wandb

        run.directory.mkdir(parents=True, exist_ok=True)
        resume = {"id": run.run_id, "resume": "allow"} if run.run_id else {}
        wandb_run = wandb.init(project=os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT, dir=str(run.directory),
                               name=run.directory.resolve().name, config=run.config, **resume)
        wandb_run.define_metric("epoch")
        wandb_run.define_metric("epoch/*", step_metric="epoch")
        return cls(wandb_run)

    def step(self, values: Mapping[str, float], step: int) -> None:
        self.run.log(finite(values), step=step)

    def metrics(self, values: Mapping[str, float], step: int, epoch: int | None = None) -> None:
        self.run.log({**finite(values), **({"epoch": epoch} if epoch is not None else {})}, step=step)

    def image(self, tag: str, image: torch.Tensor | np.ndarray, step: int, epoch: int | None = None) -> None:
        import wandb

        self.run.log({tag: wandb.Image(picture(image))}, step=step)

    def artefact(self, path: Path, kind: str, step: int, epoch: int | None = None) -> None:
        """``curves`` as a picture in the run's media; ``checkpoint`` as a ``model`` artifact (alias ``best``)."""
        import wandb

        if kind == "curves":
            self.run.log({"curves": wandb.Image(str(path))}, step=step)
            return
        artifact = wandb.Artifact(re.sub(r"[^\w.-]", "-", f"model-{self.run.id}"), type="model",
                                  metadata={"file": path.name, "step": step})
        artifact.add_file(str(path))
        self.run.log_artifact(artifact, aliases=["best" if path.stem == "best" else "latest"])

    def close(self, status: str = FINISHED) -> None:
        self.run.finish(exit_code=1 if status == FAILED else 0)

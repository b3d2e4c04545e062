"""``--log mlflow``: a run in MLflow, written by MLflow's client (an optional extra:
``pip install 'splitattn[mlflow]'``, which installs ``mlflow-skinny``: the client without the server).

MLflow's own settings decide where the run goes, as for any MLflow user: ``MLFLOW_TRACKING_URI``
(a tracking server ``http://HOST:5000``, or a local store), else MLflow's default (``sqlite:///mlflow.db``
since MLflow 3, which needs the full ``mlflow`` package; a ``file:./mlruns`` store needs
``MLFLOW_ALLOW_FILE_STORE=true`` there), and ``MLFLOW_EXPERIMENT_NAME`` (default ``splitattn``).
The run is named after the run directory and holds the config as parameters (nested keys joined
with dots: ``attn.radix``), the per-step losses and learning rate and the evaluation metrics as
metrics, and ``curves.png``, the prediction pictures and the best checkpoint as artefacts. A resumed
run continues the same MLflow run (its id is kept in ``RUN_DIR/trackers.json``).

The store is tried before training (:func:`check_mlflow`) with no retries and a short timeout: by
default MLflow retries an unreachable server for minutes, which would start a run only to stop it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .trackers import FAILED, FINISHED, STOPPED, TrackedRun, Tracker, finite, picture

DEFAULT_EXPERIMENT = "splitattn"
CHECK_TIMEOUT_S = 5  # how long the check before training waits for the tracking server
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter's value
PARAMS_PER_BATCH = 100  # a tracking server takes at most 100 parameters per request
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # stores through SQLAlchemy, which mlflow-skinny lacks
STATUS = {FINISHED: "FINISHED", STOPPED: "KILLED", FAILED: "FAILED"}


def tracking_uri() -> str:
    """Where MLflow logs: ``MLFLOW_TRACKING_URI``, else MLflow's own default."""
    import mlflow

    return mlflow.get_tracking_uri()


@contextlib.contextmanager
def _quick_requests() -> Iterator[None]:
    """MLflow's HTTP requests without retries and with a short timeout, for this block only."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(CHECK_TIMEOUT_S)}
    before = {name: os.environ.get(name) for name in quick}
    os.environ.update(quick)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_mlflow() -> None:
    """The tracking store answers (a server is up, a local store can be opened), or a ConfigError saying which."""
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    try:
        with _quick_requests():
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as error:  # MlflowException, a refused connection, a store that needs sqlalchemy ...
        reason = " ".join(str(error).split())[:400].rstrip(".")
        hint = (" A database store needs the full MLflow package (pip install mlflow); mlflow-skinny has none."
                if uri.split(":")[0] in DATABASES else "")
        raise ConfigError(f"--log mlflow: the MLflow tracking store {uri} cannot be used: {reason}.{hint} Set "
                          f"MLFLOW_TRACKING_URI to a tracking server that is up (http://HOST:5000) or a local "
                          f"store; checked before training starts") from None


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow parameters: ``{"attn": {"radix": 4}}`` -> ``{"attn.radix": "4"}``.

    Args:
        config: the run's settings.
        prefix: the keys' prefix (the parent keys, for the nested ones).
    """
    params: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            params.update(flatten(value, f"{prefix}{key}."))
        else:
            params[f"{prefix}{key}"] = str(value)[:MAX_PARAM_LENGTH]
    return params


class MlflowLog(Tracker):
    """One MLflow run, written through ``MlflowClient`` (no global active run to leak into the user's code)."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    @classmethod
    def from_run(cls, run: TrackedRun) -> MlflowLog:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri())
        if run.run_id is not None:  # the run being resumed: its parameters are logged already (and immutable)
            client.update_run(run.run_id, status="RUNNING")
            return cls(client, run.run_id)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(name)
        created = client.create_run(experiment_id, run_name=run.directory.resolve().name,
                                    tags={"mlflow.source.name": "splitattn", "splitattn.run_dir": str(run.directory)})
        params = [Param(k, v) for k, v in flatten(run.config).items()]
        for start in range(0, len(params), PARAMS_PER_BATCH):
            client.log_batch(created.info.run_id, params=params[start:start + PARAMS_PER_BATCH])
        return cls(client, created.info.run_id)

    def _log(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in finite(values).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def step(self, values: Mapping[str, float], step: int) -> None:
        self._log(values, step)

    def metrics(self, values: Mapping[str, float], step: int, epoch: int | None = None) -> None:
        """At the epoch as MLflow's step for runs counted in epochs (``epoch/val_top1`` at 1, 2 ...), else the step."""
        self._log(values, epoch if epoch is not None else step)

    def image(self, tag: str, image: torch.Tensor | np.ndarray, step: int, epoch: int | None = None) -> None:
        self.client.log_image(self.run_id, picture(image), artifact_file=f"{tag}/step_{step:06d}.png")

    def artefact(self, path: Path, kind: str, step: int, epoch: int | None = None) -> None:
        """``curves.png`` (replaced after each epoch) and the checkpoint, at the run's artefact root."""
        self.client.log_artifact(self.run_id, str(path))

    def close(self, status: str = FINISHED) -> None:
        self.client.set_terminated(self.run_id, status=STATUS.get(status, "FINISHED"))

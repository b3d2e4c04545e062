"""The settings every detection and segmentation run shares, and the run steps they drive.

Both task configs extend ``DenseRecipe``, so a field means the same thing (and has one help text
in the CLI) whichever task reads it. The fields are keyword-only: each task puts its data
arguments first, and the task configs override a default or two (batch size, learning rate)
without changing argument order. The functions below are the parts of a run that depend only on
these settings: checks, the data loader, resuming, the optimisation loop and the run directory.

The loop, the resume rule, the shared fields (``training.config.RunConfig``), the optimiser,
schedule, checkpoint writer and config loader are classification training's (``training.loop``,
``training.resume``, ``training.optim``, ``training.config.build_config``): a task config can be
built from defaults, a YAML file and ``key=value`` overrides like ``TrainConfig``.

A run directory holds ``config.yaml`` (the resolved config, as ``splitattn train`` writes it;
``--config`` reads it back) and ``last.pth``: the weights, the config and the task's extras (class
names), plus the training state (optimizer, scheduler, step, data position, generators) that
``resume`` continues from. It is written atomically every ``checkpoint_every`` steps, at the end
and when SIGTERM / Ctrl-C stops the run; ``metrics.json`` is written at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError
from ..interface import option
from ..training.checkpoint import LAST, remove_partial_writes
from ..training.config import RunConfig, save_config
from ..training.loop import Checkpointing, FitResult, LoopPlan, Optimisation, StepHook, fit, tracker_hook
from ..training.optim import build_optimizer, check_optimizer, warmup_cosine
from ..training.resume import resume_state
from ..training.runtime import grad_scaler, ignore_stop_signals
from ..training.trackers import FAILED, FINISHED, STOPPED, RunTrackers, check_log, no_output_error, open_trackers
from ..weights.checkpoint_io import atomic_write
from .loop import LossFn, LossTask, default_warmup, resolve_warmup

METRICS = "metrics.json"
CONFIG = "config.yaml"
CLIP_GRAD = 10.0  # the gradient norm dense runs clip to, so one bad batch cannot throw the weights far


@dataclass(kw_only=True)
class DenseRecipe(RunConfig):
    """Backbone, optimiser and runtime settings; saved in each checkpoint with the task's own."""

    backbone: str = "resnest50"
    pretrained_backbone: str | None = None  # "published", or a path / URL
    steps: int = 1000
    lr: float = 0.02
    warmup_steps: int | None = None  # None: a tenth of the run, at most 100 steps; must be < steps

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (*RunConfig.RESUME_MAY_CHANGE, "pretrained_backbone")

    @classmethod
    def resume_view(cls, values: dict[str, Any]) -> dict[str, Any]:
        """The warm-up as the run used it: no ``warmup_steps`` and its default compare equal."""
        if values.get("warmup_steps") is None and isinstance(values.get("steps"), int):
            values = {**values, "warmup_steps": default_warmup(values["steps"])}
        return values


def check_recipe(recipe: DenseRecipe) -> None:
    """Refuse settings that cannot work before any data are read or any model is built."""
    if recipe.steps < 1:
        raise ConfigError(f"steps must be >= 1, got {recipe.steps}")
    resolve_warmup(recipe.steps, recipe.warmup_steps)
    check_optimizer(recipe.optimizer)
    for name in ("checkpoint_every", "log_every"):
        if getattr(recipe, name) < 0:
            raise ConfigError(f"{option(name)} must be >= 0 (0: never), got {getattr(recipe, name)}")
    if check_log(recipe.log) and not recipe.output:  # a tracker named wrong, not installed or unreachable: now
        raise no_output_error(recipe.log)
    if recipe.resume and not recipe.output:
        raise ConfigError(f"{option('resume')} needs {option('output')}, the directory of the run to continue")


def recipe_loader(recipe: DenseRecipe, dataset: Dataset, *, drop_last: bool,
                  collate_fn: Callable | None = None) -> DataLoader:
    """The shuffled training loader; the loop reseeds its generator for every pass over the data.

    Workers are not persistent: each pass starts them anew from the reseeded generator, which
    keeps their augmentation repeatable, and so resumable exactly. They ignore SIGINT and SIGTERM,
    which a terminal's Ctrl-C or a job scheduler sends them too: the main process stops the run
    cleanly, then shuts them down (and they exit by themselves if it dies).
    """
    return DataLoader(dataset, batch_size=recipe.batch_size, shuffle=True, drop_last=drop_last,
                      num_workers=recipe.workers, collate_fn=collate_fn, worker_init_fn=ignore_stop_signals,
                      generator=torch.Generator().manual_seed(recipe.seed))


def open_board(recipe: DenseRecipe, start_step: int = 0) -> RunTrackers | None:
    """The run's trackers when ``recipe.log`` asks for some (checked again: ``check_recipe`` did it
    before the data were read); ``start_step``: a resumed run's step, which continues the tools' runs."""
    kinds = check_log(recipe.log, preflight=False)
    if not kinds:
        return None
    if not recipe.output:
        raise no_output_error(recipe.log)
    return open_trackers(kinds, recipe.output, asdict(recipe), start_step)


def fit_recipe(model: nn.Module, loader: DataLoader, loss_fn: LossFn, recipe: DenseRecipe, device: torch.device,
               log: Callable[[str], None], on_step: StepHook | None = None, *, extra: dict[str, Any] | None = None,
               state: dict[str, Any] | None = None) -> FitResult:
    """The recipe's optimiser and warm-up/cosine schedule, then the shared loop up to ``recipe.steps``.

    With an output directory the resolved config is saved as ``OUTPUT/config.yaml``, and the loop
    checkpoints into ``OUTPUT/last.pth`` (with the config and ``extra``) and stops cleanly on
    SIGTERM / Ctrl-C; ``state`` (from ``training.resume.resume_state``) continues a run.
    """
    optimizer = build_optimizer(model, recipe.optimizer, lr=recipe.lr, weight_decay=recipe.weight_decay)
    warmup = resolve_warmup(recipe.steps, recipe.warmup_steps)
    optimisation = Optimisation(optimizer, warmup_cosine(optimizer, recipe.steps, warmup),
                                grad_scaler(device, recipe.amp), clip_grad=CLIP_GRAD)
    checkpoint = None
    if recipe.output:
        out = Path(recipe.output)
        out.mkdir(parents=True, exist_ok=True)
        if remove_partial_writes(out):
            log(f"removed half-written checkpoint files left in {out} by an interrupted run")
        if state is None:
            if (out / LAST).is_file():
                log(f"{out / LAST} (an earlier run) will be replaced; to continue that run instead, resume it")
            (out / METRICS).unlink(missing_ok=True)  # an earlier run's results, until this one has its own
        save_config(recipe, out / CONFIG)
        saved = {"config": asdict(recipe), **(extra or {})}
        checkpoint = Checkpointing(out / LAST, recipe.checkpoint_every, lambda step: saved,
                                   saved_step=state["step"] if state is not None else None)
    if state is None or state["step"] < recipe.steps:
        log(f"schedule: {recipe.steps} steps, {warmup} of linear warm-up to lr {recipe.lr:g}, then a cosine decay "
            f"to 0" + (f"; checkpoint every {recipe.checkpoint_every} steps" if checkpoint and recipe.checkpoint_every
                       else ""))
    plan = LoopPlan(recipe.steps, device, recipe.amp, recipe.seed, recipe.deterministic, log_every=recipe.log_every,
                    progress=recipe.progress)
    return fit(LossTask(model, loss_fn), loader, optimisation, plan, checkpoint=checkpoint, state=state,
               on_step=[on_step] if on_step is not None else [], log=log)


def train_recipe(model: nn.Module, loader: DataLoader, loss_fn: LossFn, recipe: DenseRecipe, device: torch.device,
                 log: Callable[[str], None], extra: dict[str, Any]) -> tuple[FitResult, RunTrackers | None]:
    """Resume (when asked), open the trackers and train; they are returned open, for the evaluation
    to add to, only when this call trained the run to its end (else they are closed)."""
    state = resume_state(recipe, recipe.steps, extra, log)
    board = None
    if state is None or state["step"] < recipe.steps:
        board = open_board(recipe, start_step=state["step"] if state is not None else 0)
    try:
        result = fit_recipe(model, loader, loss_fn, recipe, device, log, tracker_hook(board), extra=extra, state=state)
    except BaseException:
        if board is not None:
            board.close(FAILED)
        raise
    if board is not None and not finished_now(result, recipe):
        board.close(STOPPED if result.stopped else FINISHED)
        board = None
    return result, board


@dataclass
class DenseRun:
    """A detection or segmentation run: the model, its losses, the metrics (saved ones when a
    finished run was resumed) and ``last.pth``."""

    model: nn.Module
    fit: FitResult
    metrics: dict
    checkpoint: Path | None

    @property
    def stopped(self) -> bool:
        """True when SIGTERM / Ctrl-C stopped the run early (its state is in ``checkpoint``)."""
        return self.fit.stopped


def run_recipe(model: nn.Module, loader: DataLoader, loss_fn: LossFn, recipe: DenseRecipe, device: torch.device,
               log: Callable[[str], None], extra: dict[str, Any],
               evaluate: Callable[[RunTrackers | None], dict]) -> DenseRun:
    """Train (or continue) with :func:`train_recipe`, then ``evaluate(board)`` and save the run.

    Args:
        model, loader, loss_fn, recipe, device, log, extra: as :func:`train_recipe` takes them.
        evaluate: the task's evaluation of the trained model, which may add to the open
            trackers (None without any); its metrics go to ``metrics.json``.

    Returns early, without evaluating, when a signal stopped the run (``run.stopped``) or when
    ``resume`` finds the run finished already (with the metrics it saved then).
    """
    result, board = train_recipe(model, loader, loss_fn, recipe, device, log, extra)
    if not finished_now(result, recipe):
        return DenseRun(model, result, {} if result.stopped else saved_metrics(recipe), run_checkpoint(recipe))
    status = FAILED
    try:
        metrics = evaluate(board)
        checkpoint = save_run(recipe, result, metrics, log=log)
        if board is not None and checkpoint is not None:  # dense runs keep no best.pth: the final model
            board.artefact(checkpoint, "checkpoint", result.step)
        status = FINISHED
    finally:
        if board is not None:
            board.close(status)
    return DenseRun(model, result, metrics, checkpoint)


def finished_now(result: FitResult, recipe: DenseRecipe) -> bool:
    """True when ``result`` trained the last step (not stopped by a signal, not a finished run resumed)."""
    return not result.stopped and result.step == recipe.steps and result.step > result.start_step


def saved_metrics(recipe: DenseRecipe) -> dict:
    """The metrics a finished run wrote into ``OUTPUT/metrics.json`` ({} without them)."""
    path = Path(recipe.output) / METRICS if recipe.output else None
    if path is None or not path.is_file():
        return {}
    return json.loads(path.read_text()).get("metrics", {})


def run_checkpoint(recipe: DenseRecipe) -> Path | None:
    """``OUTPUT/last.pth`` when the run has one."""
    path = Path(recipe.output) / LAST if recipe.output else None
    return path if path is not None and path.is_file() else None


def save_run(recipe: DenseRecipe, result: FitResult, metrics: dict, log: Callable[[str], None]) -> Path | None:
    """``metrics.json`` beside the final ``last.pth`` (which the loop wrote); None without output."""
    if not recipe.output:
        return None
    out = Path(recipe.output)
    record = {"final_loss": result.losses[-1] if result.losses else None, "steps": result.step, "metrics": metrics}
    atomic_write(out / METRICS, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    log(f"saved {out / LAST} and {out / METRICS}")
    return out / LAST

"""The settings every detection and segmentation run shares, and the run steps they drive.

Both task configs extend ``DenseRecipe``, so a field means the same thing (and has one help text
in the CLI) whichever task reads it. The fields are keyword-only: each task puts its data
arguments first, and the task configs override a default or two (batch size, learning rate)
without changing argument order. The functions below are the parts of a run that depend only on
these settings: checks, the data loader, resuming, the optimisation loop and the run directory.

The optimiser, schedule, checkpoint writer and config loader are classification training's
(``training.optim``, ``training.checkpoint``, ``training.config.build_config``): a task config
can be built from defaults, a YAML file and ``key=value`` overrides like ``TrainConfig``.

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
from ..training.checkpoint import LAST, load_checkpoint, remove_partial_writes
from ..training.config import save_config
from ..training.optim import build_optimizer, check_optimizer
from ..training.runtime import ignore_stop_signals
from ..training.tensorboard import TensorBoardLog, check_log
from ..weights.checkpoint_io import atomic_write
from .loop import (
    Checkpointing,
    FitResult,
    LossFn,
    StepHook,
    build_scheduler,
    default_warmup,
    fit,
    resolve_warmup,
)

METRICS = "metrics.json"
CONFIG = "config.yaml"


@dataclass(kw_only=True)
class DenseRecipe:
    """Backbone, optimiser and runtime settings; saved in each checkpoint with the task's own."""

    backbone: str = "resnest50"
    pretrained_backbone: str | None = None  # "published", or a path / URL
    steps: int = 1000
    batch_size: int = 4
    optimizer: str = "sgd"  # "sgd" (momentum 0.9) or "adamw" (training.optim.OPTIMIZERS)
    lr: float = 0.02
    weight_decay: float = 1e-4
    warmup_steps: int | None = None  # None: a tenth of the run, at most 100 steps; must be < steps
    device: str = "auto"
    amp: bool = False
    seed: int = 0
    deterministic: bool = False  # deterministic algorithms (GPU), for bit-exact reruns
    workers: int = 0  # data loading processes; 0 loads in the training process (small images, few cores)
    output: str | None = None
    log_every: int = 20
    log: str = "jsonl"  # "tensorboard": TensorBoard event files too, in OUTPUT/tensorboard
    progress: bool = True  # a progress bar on stderr
    checkpoint_every: int = 100  # save OUTPUT/last.pth every this many steps (0: only at the end and on a signal)
    resume: bool = False  # continue from OUTPUT/last.pth

    # Settings a resumed run may change; any other difference from the checkpoint's config is refused.
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        "pretrained_backbone", "device", "amp", "deterministic", "workers", "output", "log_every", "log", "progress",
        "checkpoint_every", "resume")


def check_recipe(recipe: DenseRecipe) -> None:
    """Refuse settings that cannot work before any data are read or any model is built."""
    if recipe.steps < 1:
        raise ConfigError(f"steps must be >= 1, got {recipe.steps}")
    resolve_warmup(recipe.steps, recipe.warmup_steps)
    check_optimizer(recipe.optimizer)
    for name in ("checkpoint_every", "log_every"):
        if getattr(recipe, name) < 0:
            raise ConfigError(f"{option(name)} must be >= 0 (0: never), got {getattr(recipe, name)}")
    if check_log(recipe.log) and not recipe.output:
        raise ConfigError("log='tensorboard' needs an output directory to write the event files into")
    if recipe.resume and not recipe.output:
        raise ConfigError(f"{option('resume')} needs {option('output')}, the directory of the run to continue")


def recipe_loader(recipe: DenseRecipe, dataset: Dataset, *, drop_last: bool,
                  collate_fn: Callable | None = None) -> DataLoader:
    """The shuffled training loader; ``fit`` reseeds its generator for every pass over the data.

    Workers are not persistent: each pass starts them anew from the reseeded generator, which
    keeps their augmentation repeatable, and so resumable exactly. They ignore SIGINT and SIGTERM,
    which a terminal's Ctrl-C or a job scheduler sends them too: the main process stops the run
    cleanly, then shuts them down (and they exit by themselves if it dies).
    """
    return DataLoader(dataset, batch_size=recipe.batch_size, shuffle=True, drop_last=drop_last,
                      num_workers=recipe.workers, collate_fn=collate_fn, worker_init_fn=ignore_stop_signals,
                      generator=torch.Generator().manual_seed(recipe.seed))


def open_board(recipe: DenseRecipe, purge_step: int | None = None) -> TensorBoardLog | None:
    """The run's TensorBoard log when ``recipe.log`` asks for one; ``purge_step``: a resumed run's
    first step, from which the events of the interrupted run are dropped."""
    if not check_log(recipe.log):
        return None
    if not recipe.output:
        raise ConfigError("log='tensorboard' needs an output directory to write the event files into")
    return TensorBoardLog(recipe.output, purge_step=purge_step)


def board_hook(board: TensorBoardLog | None) -> StepHook | None:
    """Per-step loss, loss parts and learning rate into ``board``."""
    if board is None:
        return None

    def on_step(step: int, loss: float, parts: dict[str, float], lr: float) -> None:
        board.scalars({"train/loss": loss, "train/lr": lr, **{f"train/{k}": v for k, v in parts.items()}}, step)

    return on_step


def _compared(config: dict[str, Any], may_change: tuple[str, ...]) -> dict[str, Any]:
    """A config's settings that must match for a resume, the warm-up as the run used it."""
    compared = {k: v for k, v in config.items() if k not in may_change}
    if compared.get("warmup_steps") is None and isinstance(config.get("steps"), int):
        compared["warmup_steps"] = default_warmup(config["steps"])
    return compared


def resume_state(recipe: DenseRecipe, extra: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any] | None:
    """The saved state to continue from, when ``recipe.resume`` and ``OUTPUT/last.pth`` exists.

    Refused when the checkpoint was trained with other settings (backbone, architecture, classes,
    schedule...: see ``RESUME_MAY_CHANGE`` for what may differ) or holds no training state.
    """
    if not recipe.resume:
        return None
    path = Path(recipe.output) / LAST
    if not path.is_file():
        log(f"resume: no checkpoint at {path}, starting from scratch")
        return None
    state = load_checkpoint(path)
    if not {"step", "optimizer", "data_position", "config"} <= set(state):
        raise ConfigError(f"cannot resume from {path}: it holds no training state (weights only, written by another "
                         f"program or an older splitattn); start a new run in another output directory")
    may_change = type(recipe).RESUME_MAY_CHANGE
    saved, current = _compared(state["config"], may_change), _compared(asdict(recipe), may_change)
    differ = [k for k in dict.fromkeys([*current, *saved]) if current.get(k, "(unset)") != saved.get(k, "(unset)")]
    if differ:
        raise ConfigError(
            f"cannot resume from {path}: it was trained with "
            + ", ".join(f"{k}={saved.get(k, '(unset)')!r}" for k in differ) + ", while this run asks for "
            + ", ".join(f"{k}={current.get(k, '(unset)')!r}" for k in differ)
            + ". Resume with the settings it was trained with (only "
            + ", ".join(k for k in may_change if k != "resume")
            + " may change), or start a new run in another output directory")
    for key, value in extra.items():
        if key in state and state[key] != value:
            raise ConfigError(f"cannot resume from {path}: it was trained with {key} {state[key]}, but the training "
                             f"data now give {value}")
    if state["step"] >= recipe.steps:
        log(f"resume: {path} has finished all {recipe.steps} steps already; nothing to train (its results are in "
            f"{METRICS}; to train again, use another output directory)")
    else:
        log(f"resume: {path} at step {state['step']} of {recipe.steps}")
    return state


def fit_recipe(model: nn.Module, loader: DataLoader, loss_fn: LossFn, recipe: DenseRecipe, device: torch.device,
               log: Callable[[str], None], on_step: StepHook | None = None, *, extra: dict[str, Any] | None = None,
               state: dict[str, Any] | None = None) -> FitResult:
    """The recipe's optimiser and warm-up/cosine schedule, then the loop up to ``recipe.steps``.

    With an output directory the resolved config is saved as ``OUTPUT/config.yaml``, and the loop
    checkpoints into ``OUTPUT/last.pth`` (with the config and ``extra``) and stops cleanly on
    SIGTERM / Ctrl-C; ``state`` (from ``resume_state``) continues a run.
    """
    optimizer = build_optimizer(model, recipe.optimizer, lr=recipe.lr, weight_decay=recipe.weight_decay)
    warmup = resolve_warmup(recipe.steps, recipe.warmup_steps)
    scheduler = build_scheduler(optimizer, recipe.steps, warmup)
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
        checkpoint = Checkpointing(out / LAST, recipe.checkpoint_every, {"config": asdict(recipe), **(extra or {})},
                                   saved_step=state["step"] if state is not None else None)
    if state is None or state["step"] < recipe.steps:
        log(f"schedule: {recipe.steps} steps, {warmup} of linear warm-up to lr {recipe.lr:g}, then a cosine decay "
            f"to 0" + (f"; checkpoint every {recipe.checkpoint_every} steps" if checkpoint and recipe.checkpoint_every
                       else ""))
    return fit(model, loader, loss_fn, steps=recipe.steps, optimizer=optimizer, scheduler=scheduler, device=device,
               amp=recipe.amp, log_every=recipe.log_every, log=log, on_step=on_step, seed=recipe.seed,
               deterministic=recipe.deterministic, checkpoint=checkpoint, state=state, progress=recipe.progress)


def train_recipe(model: nn.Module, loader: DataLoader, loss_fn: LossFn, recipe: DenseRecipe, device: torch.device,
                 log: Callable[[str], None], extra: dict[str, Any]) -> tuple[FitResult, TensorBoardLog | None]:
    """Resume (when asked), open the TensorBoard log and train; the log is returned open, for the
    evaluation to add to, only when this call trained the run to its end (else it is closed)."""
    state = resume_state(recipe, extra, log)
    board = None
    if state is None or state["step"] < recipe.steps:
        board = open_board(recipe, purge_step=state["step"] + 1 if state is not None else None)
    try:
        result = fit_recipe(model, loader, loss_fn, recipe, device, log, board_hook(board), extra=extra, state=state)
    except BaseException:
        if board is not None:
            board.close()
        raise
    if board is not None and not finished_now(result, recipe):
        board.close()
        board = None
    return result, board


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

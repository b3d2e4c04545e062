"""One small training loop for detection and segmentation: steps, not epochs; SGD or AdamW.

Dense-prediction fine-tuning is usually counted in iterations (the Detectron / torchvision
recipes), so the loop runs a fixed number of optimiser steps, cycling the loader. Everything else
is classification training's own: the optimiser and the linear warm-up into a cosine decay
(``training.optim``: ``build_scheduler`` here is its ``warmup_cosine``, counted in steps), the
checkpoint writer and generator states (``training.checkpoint.save_training_state``), device,
mixed precision and seeding (``training.runtime``) and the divergence error (``training.trainer``).
Only the default warm-up is this loop's rule (``resolve_warmup``).

Exact resume works as in the classification trainer: each pass over the data is reseeded from
(seed, pass), so the batches' order and augmentation depend only on where the run is; a checkpoint
records that position (pass, batches done in it) and every generator's state, and a resumed run
skips the batches already done, restores the generators and continues identically.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ..errors import SplitattnError
from ..interface import option, switch
from ..training.checkpoint import restore_rng, restore_training_state, save_training_state
from ..training.optim import warmup_cosine
from ..training.runtime import StopSignals, autocast, grad_scaler, seed_everything
from ..training.trainer import TrainingDiverged

MAX_DEFAULT_WARMUP = 100  # default warm-up: a tenth of the run, at most this many steps

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
StepHook = Callable[[int, float, dict[str, float], float], None]  # step, loss, its parts, learning rate


@dataclass
class FitResult:
    """Loss (total and by part) and learning rate of each step this call ran, the steps done, the wall time.

    ``start_step`` is where the call began (0, or the step of the checkpoint it resumed), ``step``
    where it ended; ``stopped`` is True when a signal ended it early, with its state saved.
    """

    losses: list[float] = field(default_factory=list)
    parts: list[dict[str, float]] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    seconds: float = 0.0
    start_step: int = 0
    step: int = 0
    stopped: bool = False


@dataclass
class Checkpointing:
    """Where the loop saves its state (``last.pth``), how often, and what else the file holds."""

    path: Path
    every: int = 0  # steps between saves; 0: only at the end and when a signal stops the run
    extra: dict[str, Any] = field(default_factory=dict)  # config, class names...: written beside the state
    saved_step: int | None = None  # the step of the file on disk, if any


def default_warmup(steps: int) -> int:
    """The warm-up when none is given: a tenth of the run, at most ``MAX_DEFAULT_WARMUP`` steps."""
    return min(MAX_DEFAULT_WARMUP, steps // 10)


def resolve_warmup(steps: int, warmup_steps: int | None) -> int:
    """``warmup_steps``, or the default for a run of ``steps``; refused unless the run outlasts it,
    so that every run reaches the end of its cosine decay (learning rate 0) with its last step."""
    if warmup_steps is None:
        return default_warmup(steps)
    if not 0 <= warmup_steps < steps:
        raise SplitattnError(f"{option('warmup_steps', str(warmup_steps))} must be at least 0 and shorter than the run "
                         f"({option('steps', str(steps))}), so that the learning rate decays to 0 by the end; give "
                         f"fewer warm-up steps, or none for the default (a tenth of the run, at most "
                         f"{MAX_DEFAULT_WARMUP}: {default_warmup(steps)} here)")
    return warmup_steps


# The dense tasks' name for the shared schedule: build_scheduler(optimizer, steps, warmup_steps).
build_scheduler = warmup_cosine


def pass_seed(seed: int, index: int) -> int:
    """The seed of pass ``index`` over the data: its order and augmentation depend on nothing else."""
    return seed * 100_003 + index * 1_009


class PassBatches(Iterator):
    """The loader's batches, pass after pass, each pass reseeded from ``pass_seed(seed, pass)``.

    Reseeding sets the global generators (augmentation in the main process, the models' own
    sampling) and the loader's ``generator`` (shuffling, and the workers' seeds: workers are
    started anew each pass, so a loader with ``persistent_workers`` would not repeat). ``position``
    is (pass, batches of it already done); starting from a saved one skips those batches, then
    restores the generators to ``rng`` as they were when it was saved.
    """

    def __init__(self, loader: Iterable, seed: int, deterministic: bool = False,
                 position: tuple[int, int] = (0, 0), rng: dict[str, Any] | None = None) -> None:
        self.loader, self.seed, self.deterministic = loader, seed, deterministic
        self.pass_index, self.in_pass = position
        self._rng = rng
        self._iterator: Iterator | None = None

    @property
    def position(self) -> tuple[int, int]:
        return self.pass_index, self.in_pass

    def _begin(self, skip: int) -> None:
        seed = pass_seed(self.seed, self.pass_index)
        seed_everything(seed, self.deterministic)
        generator = getattr(self.loader, "generator", None)
        if generator is not None:
            generator.manual_seed(seed)
        self._iterator = iter(self.loader)
        for done in range(skip):
            if next(self._iterator, None) is None:
                raise SplitattnError(f"cannot continue at batch {skip} of pass {self.pass_index + 1} over the data: "
                                     f"a pass now has {done} batches (did the data set or the batch size change?)")
        if self._rng is not None:
            restore_rng(self._rng)
            self._rng = None

    def __next__(self) -> Any:
        if self._iterator is None:
            self._begin(self.in_pass)
        while True:
            try:
                batch = next(self._iterator)
            except StopIteration:
                if self.in_pass == 0:
                    raise SplitattnError("the training data loader yields no batches (is the data set smaller than a "
                                     "batch?)") from None
                self.pass_index, self.in_pass = self.pass_index + 1, 0
                self._begin(0)
                continue
            self.in_pass += 1
            return batch


def _all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.is_floating_point())


def _progress_bar(enabled: bool, steps: int, start_step: int):
    if not enabled:
        return None
    return tqdm(total=steps, initial=start_step, desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)


def _log_line(result: FitResult, step: int, steps: int, lr: float, window: int) -> str:
    """The mean loss and loss parts over the last ``window`` steps (so the parts add up to the
    total), the rate the step used, the time per step and what remains."""
    losses, parts = result.losses[-window:], result.parts[-window:]
    names = list(dict.fromkeys(name for p in parts for name in p))
    means = {name: sum(p[name] for p in parts if name in p) / len(parts) for name in names}
    per_step = result.seconds / max(len(result.losses), 1)
    shown = " + ".join(f"{name} {value:.4f}" for name, value in means.items())
    return (f"step {step}/{steps}: loss {sum(losses) / len(losses):.4f}" + (f" = {shown}" if shown else "")
            + f" (mean of the last {len(losses)} step{'s' if len(losses) > 1 else ''}), lr {lr:.2e}, "
            f"{per_step:.2f} s/step, ETA {tqdm.format_interval(per_step * (steps - step))}")


def fit(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn,
    *,
    steps: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    device: torch.device,
    amp: bool = False,
    clip_grad: float | None = 10.0,
    log_every: int = 0,
    log: Callable[[str], None] = print,
    on_step: StepHook | None = None,
    seed: int = 0,
    deterministic: bool = False,
    checkpoint: Checkpointing | None = None,
    state: dict[str, Any] | None = None,
    progress: bool = False,
) -> FitResult:
    """Run optimiser steps up to ``steps``; ``loss_fn(model, batch)`` returns the loss and its parts.

    ``on_step`` is called after each step with its loss, the parts and the learning rate it used.
    ``log_every``: a line with the mean loss (and parts) of the last ``log_every`` steps, after the
    first step, every ``log_every`` steps and at the end; ``progress``: a tqdm bar on stderr.

    With ``checkpoint``, the training state is saved (atomically) every ``checkpoint.every``
    steps, at the end, and when SIGTERM or SIGINT arrives: the step under way finishes, the state is
    saved and the result comes back with ``stopped=True``. ``state``, such a saved state, is where
    the run continues from. A non-finite loss or gradient stops the run with ``TrainingDiverged``
    naming the step, before the weights change; the file on disk is the last good state.
    """
    if steps < 1:
        raise SplitattnError(f"steps must be >= 1, got {steps}")
    scaler = grad_scaler(device, amp)
    start_step, position, rng = 0, (0, 0), None
    if state is not None:
        restore_training_state(state, model, optimizer, scheduler, scaler)
        start_step, position, rng = state["step"], tuple(state["data_position"]), state["rng"]
    result = FitResult(start_step=start_step, step=start_step)
    if start_step >= steps:
        return result
    batches = PassBatches(loader, seed, deterministic, position, rng)

    def save(step: int) -> None:
        if not _all_finite(model):
            raise TrainingDiverged(f"the weights became non-finite by step {step}: stopping. {kept()}")
        save_training_state(checkpoint.path, model, optimizer, scheduler, scaler,
                            position={"step": step, "data_position": list(batches.position)}, extra=checkpoint.extra)
        checkpoint.saved_step = step

    def kept() -> str:
        if checkpoint is None:
            return "Lower the learning rate."
        if checkpoint.saved_step is None:
            return "No checkpoint had been written yet; lower the learning rate."
        return (f"The last good checkpoint ({checkpoint.path}, step {checkpoint.saved_step}) is kept; lower the "
                f"learning rate.")

    model.train()
    start = time.perf_counter()
    bar = _progress_bar(progress, steps, start_step)
    write = bar.external_write_mode if bar is not None else contextlib.nullcontext
    stop_signals = StopSignals(log) if checkpoint is not None else contextlib.nullcontext()
    try:
        with stop_signals as stop:
            for step in range(start_step + 1, steps + 1):
                batch = next(batches)
                with autocast(device, amp):
                    loss, parts = loss_fn(model, batch)
                value = loss.item()
                if not math.isfinite(value):
                    shown = ", ".join(f"{k} {v:.4g}" for k, v in parts.items())
                    raise TrainingDiverged(f"loss is {value} at step {step} of {steps} ({shown}): stopping. {kept()}")
                lr = optimizer.param_groups[0]["lr"]  # the rate this step uses
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if clip_grad:
                    scaler.unscale_(optimizer)
                    norm = nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], clip_grad)
                    if not scaler.is_enabled() and not math.isfinite(norm.item()):  # fp16 scaling skips these
                        raise TrainingDiverged(f"the gradient norm is {norm.item()} at step {step} of {steps}: "
                                               f"stopping. {kept()}")
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None:
                    scheduler.step()
                result.losses.append(value)
                result.parts.append(parts)
                result.lrs.append(lr)
                result.step = step
                result.seconds = time.perf_counter() - start
                if on_step is not None:
                    on_step(step, value, parts, lr)
                if bar is not None:
                    bar.set_postfix(loss=f"{value:.3f}", lr=f"{lr:.2e}", refresh=False)
                    bar.update(1)
                if log_every and (step == start_step + 1 or step % log_every == 0 or step == steps):
                    with write():
                        log(_log_line(result, step, steps, lr, log_every))
                stopping = stop is not None and stop.requested and step < steps
                if checkpoint is not None and (step == steps or stopping
                                               or (checkpoint.every and step % checkpoint.every == 0)):
                    save(step)
                if stopping:
                    result.stopped = True
                    with write():
                        log(f"saved {checkpoint.path} at step {step}; resume with {switch('resume')}")
                    break
    finally:
        if bar is not None:
            bar.close()
    result.seconds = time.perf_counter() - start
    return result

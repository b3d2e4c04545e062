"""The one training loop of every task: classification, detection and segmentation.

A task supplies only what is its own (a :class:`Task`: the model, the loss of a batch, what
happens at the end of a pass over the data, how a step is named in messages); the loop does the
rest the same way for all of them: the optimiser step (zero_grad, AMP's loss scaling, optional
gradient clipping, scheduler), the divergence check, the reseeding of every pass, the skip of the
batches already done when a run resumes and the restore of the generators, the save on SIGTERM /
Ctrl-C, the checkpoint cadence, the progress bar, the log lines and the trackers' per-step hooks.

Exact resume rests on two choices: each pass over the data is reseeded from
``pass_seed(seed, pass, rank)``, so the batches' order and augmentation depend only on where the
run is; and a checkpoint records that position (``step`` and ``data_position``: pass, batches
done in it) with every generator's state, so a resumed run skips the batches done, restores the
generators and continues identically.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm import tqdm

from ..errors import DIVERGED, ExitStatus, SplitattnError
from ..interface import switch
from .checkpoint import restore_rng, restore_training_state, save_training_state
from .runtime import Runtime, StopSignals, all_reduce_sum, autocast, seed_everything

# How every training command (train, train-det, train-seg) exits when the run diverges; the package's
# table of exit statuses (``errors.EXIT_STATUSES``, listed by ``splitattn --help``) holds it.
EXIT_DIVERGED = DIVERGED.code

StepHook = Callable[[int, float, dict[str, float], float], None]  # step, loss, its parts, learning rate


class TrainingDiverged(RuntimeError):
    """The loss (or the gradients, or the weights) became NaN or infinite; the last good checkpoint is kept.

    A ``RuntimeError``, not bad input: the settings were valid, the run went wrong. Every training
    command reports it with :func:`report_diverged`.
    """

    exit_status: ClassVar[ExitStatus] = DIVERGED


def report_diverged(command: str, error: TrainingDiverged) -> int:
    """How every training command reports divergence: the message on stderr, exit ``EXIT_DIVERGED``.

    Args:
        command: the command's name as typed (``train``, ``train-det``...), which starts the line.
        error: the divergence, whose message names the step and the checkpoint kept.
    """
    print(f"splitattn {command}: error: {error}", file=sys.stderr)
    return EXIT_DIVERGED


def tracker_hook(tracker: Any | None) -> StepHook | None:
    """The per-step hook that sends the loss, its parts and the learning rate to ``tracker`` (a
    ``training.trackers.Tracker``: its ``step(values, step)``); None without one (or an empty one)."""
    if not tracker:
        return None

    def on_step(step: int, loss: float, parts: dict[str, float], lr: float) -> None:
        tracker.step({"train/loss": loss, "train/lr": lr, **{f"train/{k}": v for k, v in parts.items()}}, step)

    return on_step


def pass_seed(seed: int, index: int, rank: int = 0) -> int:
    """The seed of pass ``index`` over the data on process ``rank``: nothing else decides its order."""
    return seed * 100_003 + index * 1_009 + rank


@dataclass
class LoopPlan:
    """How long the loop runs, where, and how it walks the data.

    ``per_pass`` caps the batches of a pass (classification's epoch; None: the whole loader, the
    dense tasks cycle it); ``on_pass`` is told each pass's index before it starts (a sampler's
    ``set_epoch``); ``runtime`` makes every process stop together when one diverges.
    """

    steps: int
    device: torch.device
    amp: bool = False
    seed: int = 0
    deterministic: bool = False
    runtime: Runtime | None = None
    per_pass: int | None = None
    on_pass: Callable[[int], None] | None = None
    log_every: int = 0
    progress: bool = False


@dataclass
class Optimisation:
    """What one step updates: the optimiser, its schedule (stepped every step), AMP's loss scaler,
    and the gradient norm to clip to (None: no clipping)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    clip_grad: float | None = None


@dataclass
class Checkpointing:
    """Where the loop saves its state (``last.pth``), how often, and what else the file holds.

    ``extra(step)`` is called at each save (a task's best score changes as it trains); ``write``
    is False on the processes other than rank 0, which train but do not write.
    """

    path: Path
    every: int = 0  # steps between saves; 0: at the ends of passes the task saves, at the end and on a signal
    extra: Callable[[int], Mapping[str, Any]] = lambda step: {}
    saved_step: int | None = None  # the step of the file on disk, if any
    write: bool = True


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


class Task:
    """What a task gives the loop; the defaults suit a task that trains for steps (detection, segmentation).

    ``loss(batch, step)`` runs under autocast and returns the loss and its parts as numbers, or
    None to skip the batch (every process together; the schedule still advances).
    """

    model: nn.Module  # the weights that train, checked finite before each save

    def loss(self, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]] | None:
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each optimiser step (an EMA's update)."""

    def end_pass(self, index: int, save: Callable[[], None]) -> None:
        """Called when pass ``index`` of ``per_pass`` batches is done; ``save()`` writes ``last.pth`` now."""

    def where(self, step: int, of: int | None = None) -> str:
        """A step as messages name it: ``step 4``, or with ``of`` (the run's steps) ``step 4 of 6``."""
        return f"step {step}" + (f" of {of}" if of is not None else "")


class PassBatches(Iterator):
    """The loader's batches, pass after pass, each pass reseeded from ``pass_seed``.

    Reseeding sets the global generators (augmentation in the main process, the models' own
    sampling) and the loader's ``generator`` (shuffling, and the workers' seeds: workers are
    started anew each pass, so a loader with ``persistent_workers`` would not repeat). ``position``
    is (pass, batches of it already done); starting from a saved one skips those batches, then
    restores the generators to ``rng`` as they were when it was saved (a position at the start of
    a pass needs no restore: the pass reseeds them).
    """

    def __init__(self, loader: Iterable, plan: LoopPlan, position: tuple[int, int] = (0, 0),
                 rng: dict[str, Any] | None = None) -> None:
        self.loader, self.plan = loader, plan
        self.pass_index, self.in_pass = position
        self._rng = rng if self.in_pass else None
        self._iterator: Iterator | None = None

    @property
    def pass_ended(self) -> bool:
        return self.plan.per_pass is not None and self.in_pass >= self.plan.per_pass

    @property
    def position(self) -> tuple[int, int]:
        """Where the data are: a finished pass of ``per_pass`` batches is the start of the next."""
        return (self.pass_index + 1, 0) if self.pass_ended else (self.pass_index, self.in_pass)

    def _begin(self, skip: int) -> None:
        seed = pass_seed(self.plan.seed, self.pass_index, self.plan.runtime.rank if self.plan.runtime else 0)
        seed_everything(seed, self.plan.deterministic)
        if self.plan.on_pass is not None:
            self.plan.on_pass(self.pass_index)
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
        if self.pass_ended:
            self.pass_index, self.in_pass, self._iterator = self.pass_index + 1, 0, None
        if self._iterator is None:
            self._begin(self.in_pass)
        while True:
            try:
                batch = next(self._iterator)
            except StopIteration:
                if self.in_pass == 0:
                    raise SplitattnError("the training data loader yields no batches (is the data set smaller than a "
                                         "batch?)") from None
                if self.plan.per_pass is not None:  # an epoch that ends early would shift every later one
                    raise SplitattnError(f"pass {self.pass_index + 1} over the training data ended after "
                                         f"{self.in_pass} batches, but its length was planned as "
                                         f"{self.plan.per_pass} (did the data change while training?)") from None
                self.pass_index, self.in_pass = self.pass_index + 1, 0
                self._begin(0)
                continue
            self.in_pass += 1
            return batch


def _all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.is_floating_point())


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


class _Run:
    """One call of :func:`fit`: the state its steps share (the batches, the result, the saves)."""

    def __init__(self, task: Task, loader: Iterable, optimisation: Optimisation, plan: LoopPlan,
                 checkpoint: Checkpointing | None, state: Mapping[str, Any] | None) -> None:
        self.task, self.optimisation, self.plan, self.checkpoint = task, optimisation, plan, checkpoint
        start, position, rng = 0, (0, 0), None
        if state is not None:
            restore_training_state(state, task.model, optimisation.optimizer, optimisation.scheduler,
                                   optimisation.scaler)
            start, position, rng = state["step"], tuple(state["data_position"]), state["rng"]
        self.result = FitResult(start_step=start, step=start)
        self.batches = PassBatches(loader, plan, position, rng)

    def kept(self) -> str:
        checkpoint = self.checkpoint
        if checkpoint is None:
            return "Lower the learning rate."
        if checkpoint.saved_step is None:
            return "No checkpoint had been written yet; lower the learning rate."
        return (f"The last good checkpoint ({checkpoint.path}, {self.task.where(checkpoint.saved_step)}) is kept; "
                f"lower the learning rate.")

    def diverged(self, what: str, step: int, parts: Mapping[str, float] | None = None) -> TrainingDiverged:
        shown = f" ({', '.join(f'{k} {v:.4g}' for k, v in parts.items())})" if parts else ""
        where = self.task.where(step, self.plan.steps)
        return TrainingDiverged(f"{what} at {where}{shown}: stopping. {self.kept()}")

    def save(self, step: int) -> None:
        checkpoint = self.checkpoint
        if checkpoint is None or checkpoint.saved_step == step:
            return
        if not _all_finite(self.task.model):
            raise TrainingDiverged(f"the weights became non-finite by {self.task.where(step)}: stopping. "
                                   f"{self.kept()}")
        if checkpoint.write:
            o = self.optimisation
            save_training_state(checkpoint.path, self.task.model, o.optimizer, o.scheduler, o.scaler,
                                position={"step": step, "data_position": list(self.batches.position)},
                                extra=checkpoint.extra(step))
        checkpoint.saved_step = step

    def step(self, step: int) -> tuple[float, dict[str, float], float] | None:
        """One optimiser step on the next batch: (loss, parts, rate used), or None for a skipped batch."""
        plan, o = self.plan, self.optimisation
        batch = next(self.batches)
        with autocast(plan.device, plan.amp):
            out = self.task.loss(batch, step)
        if out is None:
            if o.scheduler is not None:
                o.scheduler.step()
            return None
        loss, parts = out
        value = float(loss.detach())
        if all_reduce_sum([float(not math.isfinite(value))], plan.runtime or Runtime(plan.device))[0]:
            raise self.diverged(f"loss is {value}", step, parts)
        lr = o.optimizer.param_groups[0]["lr"]  # the rate this step uses
        o.optimizer.zero_grad(set_to_none=True)
        o.scaler.scale(loss).backward()
        trained = [p for p in self.task.model.parameters() if p.requires_grad]
        if o.clip_grad:
            o.scaler.unscale_(o.optimizer)
            norm = nn.utils.clip_grad_norm_(trained, o.clip_grad)
        elif not o.scaler.is_enabled():
            norm = nn.utils.get_total_norm([p.grad for p in trained if p.grad is not None])
        # Checked on every step, not only when clipping: a finite loss can still give non-finite
        # gradients (measured: oneDNN's bfloat16 backward of a strided 3 x 3 conv on a 1 x 1 map,
        # torch 2.14 on CPU, in about one run in four of a seresnet18 at 16 px), and one such step
        # would write them into the weights. fp16's loss scaling skips those steps by itself.
        if not o.scaler.is_enabled() and not math.isfinite(norm.item()):
            raise self.diverged(f"the gradient norm is {norm.item()}", step)
        o.scaler.step(o.optimizer)
        o.scaler.update()
        if o.scheduler is not None:
            o.scheduler.step()
        self.task.after_step()
        return value, parts, lr


def fit(task: Task, loader: Iterable, optimisation: Optimisation, plan: LoopPlan, *,
        checkpoint: Checkpointing | None = None, state: Mapping[str, Any] | None = None,
        on_step: Sequence[StepHook] = (), log: Callable[[str], None] = print,
        stop_signals: StopSignals | None = None) -> FitResult:
    """Train ``task`` up to ``plan.steps`` optimiser steps over ``loader``, pass after pass.

    Args:
        task: the model and its loss, and what the task does at the end of each pass.
        loader: the training batches; its ``generator`` (if any) is reseeded every pass.
        optimisation: optimiser, schedule, loss scaler and gradient clipping.
        plan: the number of steps, the device, AMP, seeding, pass length, logging and progress.
        checkpoint: where and how often to save; with it, SIGTERM / Ctrl-C finishes the step under
            way, saves and returns with ``stopped=True``. None: nothing is saved.
        state: a saved training state (``last.pth``) to continue from, exactly.
        on_step: called after each step with its loss, parts and the learning rate it used (the trackers).
        log: where the log lines go (rank 0's stdout).
        stop_signals: the signal handler to use (a task may hold its own); default: a new one.

    A non-finite loss or gradient raises ``TrainingDiverged`` naming the step, before the
    weights change; the file on disk is the last good state.
    """
    if plan.steps < 1:
        raise SplitattnError(f"steps must be >= 1, got {plan.steps}")
    run = _Run(task, loader, optimisation, plan, checkpoint, state)
    result = run.result
    if result.start_step >= plan.steps:
        return result
    task.model.train()
    start = time.perf_counter()
    bar = (tqdm(total=plan.steps, initial=result.start_step, desc="train", unit="step", file=sys.stderr,
                dynamic_ncols=True) if plan.progress else None)
    write = bar.external_write_mode if bar is not None else contextlib.nullcontext
    if stop_signals is None and checkpoint is not None:
        stop_signals = StopSignals(log)
    try:
        with stop_signals or contextlib.nullcontext():
            for step in range(result.start_step + 1, plan.steps + 1):
                done = run.step(step)
                result.step, result.seconds = step, time.perf_counter() - start
                if done is not None:
                    value, parts, lr = done
                    result.losses.append(value)
                    result.parts.append(parts)
                    result.lrs.append(lr)
                    for hook in on_step:
                        hook(step, value, parts, lr)
                    if bar is not None:
                        bar.set_postfix(loss=f"{value:.3f}", lr=f"{lr:.2e}", refresh=False)
                    if plan.log_every and (step == result.start_step + 1 or step % plan.log_every == 0
                                           or step == plan.steps):
                        with write():
                            log(_log_line(result, step, plan.steps, lr, plan.log_every))
                if bar is not None:
                    bar.update(1)
                if run.batches.pass_ended:
                    task.end_pass(run.batches.pass_index, lambda step=step: run.save(step))
                    task.model.train()
                stopping = stop_signals is not None and stop_signals.requested and step < plan.steps
                if checkpoint is not None and (step == plan.steps or stopping
                                               or (checkpoint.every and step % checkpoint.every == 0)):
                    run.save(step)
                if stopping:
                    result.stopped = True
                    with write():
                        log(f"saved {checkpoint.path} at {task.where(step)}; resume with {switch('resume')}")
                    break
    finally:
        if bar is not None:
            bar.close()
    result.seconds = time.perf_counter() - start
    return result

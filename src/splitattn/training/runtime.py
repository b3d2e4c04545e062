"""Where and how a run executes: device, mixed precision, determinism, and torchrun's processes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..errors import SplitattnError


@dataclass(frozen=True)
class Runtime:
    """This process's place in the run. ``world_size == 1`` without torchrun."""

    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def select_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: this process's CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SplitattnError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def start(device: str = "auto") -> Runtime:
    """Join torchrun's process group when launched by it (NCCL on GPU, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = select_device(device, local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Runtime(chosen, rank, local_rank, world_size)


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed every generator; in deterministic mode also forbid non-deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # Set both ways: the switch is process-wide, and a run that is not deterministic must not
    # inherit it from an earlier one in the same process (a notebook, a test worker).
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic and torch.cuda.is_available()


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """fp16 autocast on CUDA, bf16 on CPU (CPUs have no fast fp16 and bf16 needs no loss scaling)."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, amp: bool) -> torch.amp.GradScaler:
    """Loss scaling is needed for fp16 only; a disabled scaler is a no-op with the same API."""
    return torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")


def all_reduce_sum(values: list[float], runtime: Runtime) -> list[float]:
    """Sum numbers across processes (counts and loss sums), so every rank reports the same metrics."""
    if not runtime.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=runtime.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_lists(items: list, runtime: Runtime) -> list:
    """Every process's ``items`` (picklable), concatenated in rank order, on every process."""
    if not runtime.distributed:
        return list(items)
    gathered: list = [None] * runtime.world_size
    dist.all_gather_object(gathered, list(items))
    return [item for part in gathered for item in part]


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()


class StopSignals:
    """SIGTERM and SIGINT (Ctrl-C) ask a training loop to stop instead of killing it.

    Inside ``with StopSignals(log) as stop:`` either signal sets ``stop.requested`` and says so; the
    loop finishes its step, saves and returns. A second Ctrl-C interrupts at once. Handlers can only
    be installed in the main thread (where Python delivers signals); elsewhere this does nothing.
    The previous handlers come back on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            if handler is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        with contextlib.suppress(RuntimeError):  # a print interrupted mid-write refuses a re-entrant one
            self.log(f"received {signal.Signals(signum).name}: finishing this step, then saving and exiting")


def ignore_stop_signals(worker_id: int = 0) -> None:
    """A data-loader worker's ``worker_init_fn``: leave SIGINT and SIGTERM to the main process.

    A terminal's Ctrl-C and a job scheduler's SIGTERM reach the whole process group; workers that
    died of them would crash the run instead of letting it save and stop (they exit by themselves
    when the main process goes).
    """
    for sig in StopSignals.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)

"""Interleaved timing: candidates take turns (A B C A B C ...) so that load from other processes
on a shared machine lands on all of them alike and their ratios stay meaningful.

Each timed call follows untimed calls of the same candidate for at least :data:`SETTLE_SECONDS`
(``settle``): whatever ran before leaves the machine in its own state for a while (a PyTorch
candidate's OpenMP threads spinning, another engine's thread pool awake), and the next candidate
pays for it. Measured (AVX-512 EPYC, 2 threads): OpenVINO running resnest50 at batch 1 right after
a PyTorch candidate was 10% slower than the same setup right after another OpenVINO one; one
untimed call before each timed one still left 5-11% on a small model (resnest14d, 64 px, 4 ms a
call), 0.1 s of them none. So the order of the candidates, not their speed, decided the ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..errors import SplitattnError


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


SETTLE_SECONDS = 0.1  # untimed calls before each timed one (at least one call)


def _settle(fn: Callable[[], object], device: torch.device) -> None:
    """Untimed calls of ``fn`` for at least :data:`SETTLE_SECONDS` (one call at least)."""
    started = time.perf_counter()
    while True:
        fn()
        synchronize(device)
        if time.perf_counter() - started >= SETTLE_SECONDS:
            return


def interleaved_times(
    fns: Mapping[str, Callable[[], object]], device: torch.device, warmup: int, repeats: int, settle: bool = True
) -> dict[str, list[float]]:
    """Seconds per call of each function, measured in turns.

    Args:
        fns: the candidates, by name; each call is one unit of work.
        device: where they run (GPU work is waited for before and after each timed call).
        warmup: untimed rounds first.
        repeats: timed rounds; each gives one time per candidate.
        settle: in timed rounds, call each candidate untimed for :data:`SETTLE_SECONDS` right
            before its timed call, so it does not pay for the previous candidate (module notes).
    """
    if repeats < 1:
        raise SplitattnError(f"repeats must be >= 1, got {repeats}")
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_index in range(warmup + repeats):
        timed = round_index >= warmup
        for name, fn in fns.items():
            if timed and settle:
                _settle(fn, device)
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            if timed:
                times[name].append(time.perf_counter() - start)
    return times


@dataclass(frozen=True)
class TimingSummary:
    """Latency statistics of one candidate and the throughput they imply."""

    median_ms: float
    p90_ms: float
    images_per_s: float

    @classmethod
    def of(cls, seconds: list[float], batch_size: int) -> TimingSummary:
        ordered = sorted(seconds)
        median = statistics.median(ordered)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        return cls(median * 1e3, p90 * 1e3, batch_size / median)

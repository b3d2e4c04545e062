"""The machine's fp32 (or other dtype) matrix-multiply rate, and the FLOPs a model needs.

A model's achieved FLOP rate divided by the matmul rate says how close it gets to what this
hardware can do with dense arithmetic; split attention's small grouped convs keep it well below.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .timing import synchronize


def matmul_rate(device: torch.device, dtype: torch.dtype = torch.float32, size: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` FLOP/s of a ``size`` x ``size`` matrix product (2 n^3 FLOPs)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def matmul_probe(device: torch.device, dtype: torch.dtype = torch.float32, size: int = 1024):
    """A zero-argument matrix product and its FLOPs, to time alongside the models."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    return (lambda: torch.mm(a, b)), 2 * size**3


def count_flops(model: nn.Module, example: torch.Tensor, backward: bool = False) -> int:
    """FLOPs (multiply and add counted separately) of one call on ``example``; convs and matmuls only."""
    counter = FlopCounterMode(display=False)
    with counter:
        if backward:
            model(example).float().sum().backward()
        else:
            with torch.no_grad():
                model(example)
    return counter.get_total_flops()

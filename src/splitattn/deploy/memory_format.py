"""Choose the activation memory layout (NCHW or NHWC) a deployed model runs fastest in.

oneDNN (CPU) and cuDNN (GPU) both run grouped convolutions, which split attention is made of,
faster on channels-last tensors once there is enough batch to amortise the layout change of the
input; for a single image on CPU the plain layout usually wins (see the benchmark table in the
README). ``"auto"`` applies that rule; ``"probe"`` times both layouts on the actual input shape.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from ..errors import SplitattnError

MEMORY_FORMATS = ("auto", "probe", "channels_last", "contiguous")


def heuristic_memory_format(device: torch.device, batch_size: int, dtype: torch.dtype) -> torch.memory_format:
    """Channels-last on GPU and for batches > 1 on CPU; NCHW for one image on CPU."""
    if device.type == "cuda" or batch_size > 1:
        return torch.channels_last
    return torch.contiguous_format


@torch.inference_mode()
def probe_memory_format(model: nn.Module, example: torch.Tensor, repeats: int = 3) -> torch.memory_format:
    """Time ``model`` on ``example`` in both layouts (interleaved, best of ``repeats``) and pick the faster."""
    best: dict[torch.memory_format, float] = {}
    formats = (torch.contiguous_format, torch.channels_last)
    for _ in range(repeats + 1):  # the first round warms up
        for fmt in formats:
            model.to(memory_format=fmt)
            x = example.contiguous(memory_format=fmt)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            model(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            elapsed = time.perf_counter() - start
            best[fmt] = min(best.get(fmt, float("inf")), elapsed) if _ else float("inf")
    return min(formats, key=lambda fmt: best[fmt])


def resolve_memory_format(
    model: nn.Module, memory_format: str, batch_size: int, example: torch.Tensor | None
) -> torch.memory_format:
    """Turn a ``memory_format`` option into a torch memory format for this model and batch size."""
    if memory_format not in MEMORY_FORMATS:
        raise SplitattnError(f"memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}")
    if memory_format == "channels_last":
        return torch.channels_last
    if memory_format == "contiguous":
        return torch.contiguous_format
    param = next(model.parameters())
    if memory_format == "probe":
        if example is None:
            raise SplitattnError("memory_format='probe' needs an example input (example_input=...)")
        return probe_memory_format(model, example)
    return heuristic_memory_format(param.device, batch_size, param.dtype)

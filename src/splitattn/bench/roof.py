"""The fastest dense arithmetic this machine does (the roof), and the FLOPs a model needs.

A model's achieved FLOP rate divided by the roof says how close it gets to what the hardware can
do. The roof is the better of two dense probes, each timed in the same rounds as the models: a
large matrix product and a large 3 x 3 convolution in channels-last (oneDNN's best case). On many
CPUs they differ by 2x: PyTorch's matrix product goes through a BLAS library whose kernels may not
use every vector unit the CPU has (MKL on AMD processors, for one), while the convolutions run
oneDNN's own JIT kernels. With the matrix product alone as the roof, convolutional models come out
"above 100%", which says nothing; against the faster probe the fraction means what it should.

Reduced precision has its own roofs, measured the same way: the 3 x 3 convolution (and matrix
product) in bfloat16, and in int8 (the convolution quantized by ``splitattn.quantize`` and
compiled to oneDNN's int8 kernel, VNNI where the CPU has it). A bfloat16 or int8 model is reported
against the roof of its own arithmetic, so "50% of roof" means the same thing in every row.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import SplitattnError
from .timing import interleaved_times

Probe = tuple[Callable[[], object], int]  # (zero-argument unit of work, its FLOPs)


def matmul_probe(device: torch.device, dtype: torch.dtype = torch.float32, size: int = 1024) -> Probe:
    """A zero-argument matrix product and its FLOPs, to time alongside the models."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    return (lambda: torch.mm(a, b)), 2 * size**3


def conv_probe(
    device: torch.device, dtype: torch.dtype = torch.float32, channels: int = 256, size: int = 56, batch: int = 8
) -> Probe:
    """A dense 3 x 3 convolution (ResNet stage-1 sized, channels-last) and its FLOPs."""
    layout = torch.channels_last
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(device, dtype).eval().to(memory_format=layout)
    x = torch.randn(batch, channels, size, size, device=device, dtype=dtype).contiguous(memory_format=layout)

    def run() -> object:
        with torch.inference_mode():
            return conv(x)

    return run, 2 * batch * channels * channels * 9 * size * size


def int8_conv_probe(channels: int = 256, size: int = 56, batch: int = 8) -> Probe:
    """The 3 x 3 convolution of ``conv_probe`` in int8 (static, per-channel weights), compiled for oneDNN."""
    from ..quantize import quantize

    conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU()).eval()
    x = torch.randn(batch, channels, size, size).relu()
    quantized = quantize(conv, [x])

    def run() -> object:
        with torch.inference_mode():
            return quantized(x)

    return run, 2 * batch * channels * channels * 9 * size * size


PRECISIONS = ("float32", "bfloat16", "int8")


def roof_probes(device: torch.device, dtype: torch.dtype = torch.float32, precision: str | None = None
                ) -> dict[str, Probe]:
    """The dense probes whose best rate is the roof: ``{"matmul": ..., "conv3x3": ...}`` in ``dtype``,
    or for ``precision`` (``"bfloat16"``; ``"int8"``: the int8 convolution, CPU only)."""
    if precision == "int8":
        if device.type != "cpu":
            raise SplitattnError("the int8 roof probe runs oneDNN's CPU kernels; its device must be cpu")
        return {"conv3x3 int8": int8_conv_probe()}
    if precision is not None:
        if precision not in PRECISIONS:
            raise SplitattnError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        dtype = getattr(torch, precision)
    suffix = "" if dtype == torch.float32 else f" {str(dtype).removeprefix('torch.')}"
    return {"matmul" + suffix: matmul_probe(device, dtype), "conv3x3" + suffix: conv_probe(device, dtype)}


def roof_rate(
    device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 5
) -> tuple[float, dict[str, float]]:
    """The roof in FLOP/s and each probe's best-of-``repeats`` rate (keyed as in :func:`roof_probes`)."""
    probes = roof_probes(device, dtype)
    times = interleaved_times({name: fn for name, (fn, _) in probes.items()}, device, warmup=1, repeats=repeats)
    rates = {name: work / min(times[name]) for name, (_, work) in probes.items()}
    return max(rates.values()), rates


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

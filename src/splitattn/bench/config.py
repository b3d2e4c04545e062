"""What a benchmark run measures (:class:`BenchConfig`) and what it times (:class:`Candidate`).

Kept apart from the candidate builders so that each family of candidates (ours, the export
engines, the references) can live in its own file and share these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import SplitattnError

if TYPE_CHECKING:
    from ..deploy import AotModel

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CALIBRATION_BATCHES = 4  # of the benchmark's batch size (random images: the ranges matter, not the accuracy)


@dataclass
class Candidate:
    """One implementation under test: its label, its unit of work and the model behind it."""

    label: str
    fn: Callable[[], object]
    model: nn.Module | None = None
    observable_memory: bool = True  # False where allocations happen outside PyTorch's dispatcher
    precision: str = "float32"  # what its arithmetic runs in: its roof is that precision's
    setup: dict = field(default_factory=dict)  # how it was built and configured (engine, shapes, hints, checks)


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: model, batch, resolution, precision, layout and device."""

    model: str
    batch_size: int = 1
    img_size: int = 224
    dtype: str = "float32"
    channels_last: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise SplitattnError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.img_size < 32:
            raise SplitattnError(f"img_size must be >= 32, got {self.img_size}")
        if self.dtype not in DTYPES:
            raise SplitattnError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def example(self, seed: int = 0) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.batch_size, 3, self.img_size, self.img_size, generator=gen)
        return x.to(self.device, self.torch_dtype).contiguous(memory_format=self.memory_format)


def float32_cpu_only(config: BenchConfig, variant: str) -> None:
    """Refuse a candidate that sets its own precision (bf16, int8, an engine) on another dtype or device."""
    if config.device != "cpu" or config.dtype != "float32":
        raise SplitattnError(f"the {variant!r} candidate starts from the float32 CPU model (it sets its own "
                             f"precision); run it with dtype float32 on cpu, not {config.dtype} on {config.device}")


def calibration(config: BenchConfig) -> list[torch.Tensor]:
    """Random batches to calibrate int8 candidates on: their ranges matter here, not their accuracy."""
    return [config.example(seed=1 + i) for i in range(CALIBRATION_BATCHES)]


def int8_aot_package(model: nn.Module, config: BenchConfig, x: torch.Tensor) -> AotModel:
    """``model`` quantized on :func:`calibration` and compiled ahead of time at ``x``'s shape: what
    ``save_quantized(aot=True)`` writes, before its check against the float model. The benchmark's
    ``int8+aot`` candidate runs it and its load-time row saves it, so both measure one package."""
    from ..quantize import quantize
    from ..quantize.archive import compile_quantized_package

    return compile_quantized_package(quantize(model, calibration(config), compile=False), x)

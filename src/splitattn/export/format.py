"""What an export format is, as data: one :class:`ExportFormat` record per format, and the precisions.

``export_checked``, ``splitattn export`` and the benchmark's engine candidates all read the table
of these records (:data:`splitattn.export.formats.FORMATS`) instead of choosing by name, so a new
format (or a new engine running an existing file kind) is one record in one file plus one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

Run = Callable[[torch.Tensor], torch.Tensor]
# The check's limit for every fp32 file: exporters reorder float arithmetic, nothing more.
FP32_TOLERANCE = 1e-4
# Largest relative error against the eval-mode PyTorch model an ONNX int8 check accepts: the same as
# OpenVINO's int8 (see splitattn.export.openvino.TOLERANCES for the measurements behind it).
INT8_TOLERANCE = 0.35


class Writer(Protocol):
    """Writes ``model`` (deploy mode, eval) to ``path`` traced on ``example``; returns the path written."""

    def __call__(self, model: nn.Module, path: Path, example: torch.Tensor, precision: str,
                 calibration: list[torch.Tensor] | None, **options: str) -> Path: ...


@dataclass(frozen=True)
class Precision:
    """A precision a file can be written in.

    Args:
        name: what ``precision=`` takes (``"fp32"``).
        dtype_name: the benchmark's and PyTorch's word for what it computes in (``"float32"``).
        needs_calibration: it cannot be written without calibration images (quantization ranges).
        takes_calibration: calibration images mean something for it (int8 ranges, bf16's check).
    """

    name: str
    dtype_name: str
    needs_calibration: bool = False
    takes_calibration: bool = False


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", "float32"),
    Precision("bf16", "bfloat16", takes_calibration=True),
    Precision("int8", "int8", needs_calibration=True, takes_calibration=True),
)}


def _same_precision(precision: str) -> str:
    return precision


@dataclass(frozen=True)
class ExportFormat:
    """One export format with the engine that runs it.

    Args:
        name: what ``fmt=`` (``--format``) takes.
        label: how check messages name it (``"ONNX"``).
        suffix: the file suffix written by default (``".onnx"``).
        write: the exporter (see :class:`Writer`).
        runner: ``(path, precision) -> (run, precision it really ran at)``; the second can differ
            from the one asked (OpenVINO runs bf16 as fp32 on a CPU without bf16 instructions).
        tolerances: the precisions it can be written in, each with the largest relative error
            against the eval-mode PyTorch model its check accepts.
        options: the extra keyword options its writer accepts, each with its allowed values
            (the first is the default).
        bench_precisions: the precisions the benchmark times it in (a candidate each).
        bench_options: the options the benchmark exports with.
        engine_precision: the precision the engine computes a file written in ``precision`` at
            when nobody asks otherwise (OpenVINO's CPU plugin: bf16 where the CPU has it).
        attention_mlp: the form the attention MLPs are exported in (``deploy``'s ``attention_mlp``):
            the one its engine runs fastest.
    """

    name: str
    label: str
    suffix: str
    write: Writer
    runner: Callable[[Path, str], tuple[Run, str]]
    tolerances: Mapping[str, float]
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bench_precisions: tuple[str, ...] = ("fp32",)
    bench_options: Mapping[str, str] = field(default_factory=dict)
    engine_precision: Callable[[str], str] = _same_precision
    attention_mlp: str = "matmul"

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(self.tolerances)

"""ONNX export with a dynamic batch dimension, checked against PyTorch with onnxruntime.

``onnx``, ``onnxscript`` and ``onnxruntime`` are optional (``pip install splitattn[export]``) and
imported only when used.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..deploy.onnx_runtime import EXPORTERS, export_onnx, onnx_session, require_onnxruntime, run_onnx
from .compare import worst_relative_error
from .format import FP32_TOLERANCE, INT8_TOLERANCE, ExportFormat, Run


def _require(module: str):
    return require_onnxruntime("ONNX export", module)


def check_onnx(path: str | Path, model: nn.Module, inputs: list[torch.Tensor], tolerance: float = 1e-4) -> float:
    """Largest relative error of the ONNX file against ``model`` over ``inputs``; raises beyond ``tolerance``."""
    session = onnx_session(path)
    return worst_relative_error(lambda x: run_onnx(session, x), model, inputs, tolerance, "ONNX")


def _write(model: nn.Module, path: Path, example: torch.Tensor, precision: str,
           calibration: list[torch.Tensor] | None, exporter: str = "dynamo") -> Path:
    """fp32 straight from the exporter; int8 is that file quantized (QDQ) on ``calibration``."""
    if precision == "int8":
        from .onnx_int8 import export_onnx_int8  # it builds on this module

        return export_onnx_int8(model, path, example, calibration, exporter=exporter)
    return export_onnx(model, path, example, exporter=exporter)


def onnx_runner(path: str | Path, precision: str = "fp32") -> tuple[Run, str]:
    """An onnxruntime CPU session on ``path`` as a function, and the precision it runs at (the file's)."""
    session = onnx_session(path)
    return (lambda x: run_onnx(session, x)), precision


ONNX = ExportFormat("onnx", "ONNX", ".onnx", _write, onnx_runner, {"fp32": FP32_TOLERANCE, "int8": INT8_TOLERANCE},
                    options={"exporter": EXPORTERS}, bench_precisions=("fp32", "int8"),
                    bench_options={"exporter": "legacy"})  # legacy: much quicker to export large networks

"""ONNX export with a dynamic batch dimension, checked against PyTorch with onnxruntime.

``onnx``, ``onnxscript`` and ``onnxruntime`` are optional (``pip install splitattn[export]``) and
imported only when used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SplitattnError
from ..optional import require
from .compare import worst_relative_error
from .format import FP32_TOLERANCE, INT8_TOLERANCE, ExportFormat, Run

BATCH_DIM = "batch"  # the name of the dynamic batch axis in the files we write (both exporters)

EXPORTERS = ("dynamo", "legacy")


def _require(module: str):
    return require(module, "ONNX export", "export")


def export_onnx(
    model: nn.Module, path: str | Path, example: torch.Tensor, opset: int = 18, exporter: str = "dynamo"
) -> Path:
    """Write ``model`` (eval mode) to ``path`` with input ``input`` and output ``output``, batch dynamic.

    ``exporter="dynamo"`` uses ``torch.export`` (PyTorch's supported path); ``"legacy"`` the older
    TorchScript-based exporter, which is much quicker on large networks.
    """
    if exporter not in EXPORTERS:
        raise SplitattnError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    if example.ndim != 4:
        raise SplitattnError(f"example input must be 4-D (N, C, H, W), got shape {tuple(example.shape)}")
    _require("onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = example.contiguous()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            _require("onnxscript")
            program = torch.onnx.export(
                model, (example,), dynamo=True, input_names=["input"], output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},), opset_version=opset, verbose=False,
            )
            program.save(str(path), external_data=False)
        else:
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: BATCH_DIM}, "output": {0: BATCH_DIM}}, opset_version=min(opset, 17),
            )
    return path


def session_options(threads: int | None = None, batch: int | None = None):
    """onnxruntime session options: all graph optimizations, ``threads`` intra-op threads (default:
    torch's), no busy-waiting after a run, and the dynamic batch fixed to ``batch`` where given.

    Spinning pool threads would steal the cores from whatever runs next (in a benchmark, the next
    candidate in the interleaved rounds). A fixed batch lets onnxruntime plan for one static shape.

    Args:
        threads: intra-op threads.
        batch: the batch size to fix the file's ``batch`` axis to (None: left dynamic).
    """
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if batch is not None:
        options.add_free_dimension_override_by_name(BATCH_DIM, batch)
    return options


def onnx_session(path: str | Path, threads: int | None = None, batch: int | None = None):
    """An onnxruntime CPU session for ``path`` with :func:`session_options`."""
    ort = _require("onnxruntime")
    return ort.InferenceSession(str(path), session_options(threads, batch), providers=["CPUExecutionProvider"])


def run_onnx(session, x: torch.Tensor) -> torch.Tensor:
    """Run an onnxruntime session on a float tensor; returns a torch tensor."""
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(x.detach().cpu().numpy())}
    return torch.from_numpy(session.run(None, feed)[0])


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

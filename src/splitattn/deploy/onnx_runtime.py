"""The ONNX and onnxruntime calls the package makes, each made once here: writing a network as
ONNX, and the session setup that the export's check, the onnxruntime deploy backend and the
benchmark share.

``onnx``, ``onnxscript`` and ``onnxruntime`` are optional (``pip install 'splitattn[export]'``)
and imported inside the functions, so that importing this module costs nothing without them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SplitattnError
from ..optional import require

BATCH_DIM = "batch"  # the name of the dynamic batch axis in the ONNX files we write (both exporters)


def require_onnxruntime(purpose: str = "onnxruntime", module: str = "onnxruntime") -> ModuleType:
    """``onnxruntime`` (or ``onnx``) imported, or an error naming ``purpose`` and the extra that installs it."""
    return require(module, purpose, "export")


def _dynamo(model: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool, opset: int) -> None:
    require_onnxruntime("ONNX export", "onnxscript")
    shapes = ({0: torch.export.Dim(BATCH_DIM)},) if dynamic_batch else None
    program = torch.onnx.export(model, (example,), dynamo=True, input_names=["input"], output_names=["output"],
                                dynamic_shapes=shapes, opset_version=opset, verbose=False)
    program.save(str(path), external_data=False)


def _legacy(model: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool, opset: int) -> None:
    axes = {"input": {0: BATCH_DIM}, "output": {0: BATCH_DIM}} if dynamic_batch else None
    torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["input"], output_names=["output"],
                      dynamic_axes=axes, opset_version=min(opset, 17))  # the legacy exporter stops at 17


# exporter name -> how it writes (model, example, path, dynamic batch, opset)
_WRITERS: dict[str, Callable[[nn.Module, torch.Tensor, Path, bool, int], None]] = {"dynamo": _dynamo,
                                                                                   "legacy": _legacy}
EXPORTERS = tuple(_WRITERS)


def export_onnx(model: nn.Module, path: str | Path, example: torch.Tensor, opset: int = 18, exporter: str = "dynamo",
                dynamic_batch: bool = True) -> Path:
    """Write ``model`` (eval mode) to ``path`` as ONNX, with input ``input`` and output ``output``.

    Args:
        model: the network.
        path: the ``.onnx`` file to write.
        example: one batch (N, C, H, W) to trace with.
        opset: the ONNX opset (at most 17 with the legacy exporter).
        exporter: ``"dynamo"`` uses ``torch.export`` (PyTorch's supported path); ``"legacy"`` the
            older TorchScript-based exporter, which is much quicker on large networks.
        dynamic_batch: the batch axis named ``batch`` and left free; False writes ``example``'s
            shape, which lets onnxruntime fold every shape computation when it loads the file.
    """
    if exporter not in _WRITERS:
        raise SplitattnError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    if example.ndim != 4:
        raise SplitattnError(f"example input must be 4-D (N, C, H, W), got shape {tuple(example.shape)}")
    require_onnxruntime("ONNX export", "onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporters' deprecation notices and the tracer's input-check warnings
        _WRITERS[exporter](model.eval(), example.contiguous(), path, dynamic_batch, opset)
    return path


def session_options(threads: int | None = None, batch: int | None = None) -> Any:
    """onnxruntime session options: all graph optimizations, ``threads`` intra-op threads (default:
    torch's), no busy-waiting after a run, and the dynamic batch fixed to ``batch`` where given.

    Spinning pool threads would steal the cores from whatever runs next (in a benchmark, the next
    candidate in the interleaved rounds; in an application, its own Python between calls). A
    fixed batch lets onnxruntime plan for one static shape.

    Args:
        threads: intra-op threads.
        batch: the batch size to fix the file's ``batch`` axis to (None: left as the file has it).
    """
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if batch is not None:
        options.add_free_dimension_override_by_name(BATCH_DIM, batch)
    return options


def onnx_session(model: str | Path | bytes, threads: int | None = None, batch: int | None = None) -> Any:
    """An onnxruntime CPU session for a file or a serialized model, with :func:`session_options`."""
    ort = require_onnxruntime()
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, session_options(threads, batch), providers=["CPUExecutionProvider"])


def run_onnx(session: Any, x: torch.Tensor) -> torch.Tensor:
    """Run an onnxruntime session on a float tensor; returns a torch tensor of its first output."""
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(x.detach().cpu().numpy())}
    return torch.from_numpy(session.run(None, feed)[0])

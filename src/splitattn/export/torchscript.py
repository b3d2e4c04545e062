"""TorchScript export by tracing: the network has no data-dependent control flow, and tracing
records shape reads as graph ops, so the traced file accepts any batch size."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import SplitattnError
from .compare import worst_relative_error
from .format import FP32_TOLERANCE, ExportFormat, Run


def export_torchscript(model: nn.Module, path: str | Path, example: torch.Tensor) -> Path:
    """Trace ``model`` (eval mode) on ``example``, freeze it and save it to ``path``."""
    if example.ndim != 4:
        raise SplitattnError(f"example input must be 4-D (N, C, H, W), got shape {tuple(example.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), example, check_trace=False)
        torch.jit.save(torch.jit.freeze(traced), str(path))
    return path


def check_torchscript(path: str | Path, model: nn.Module, inputs: list[torch.Tensor], tolerance: float = 1e-4) -> float:
    """Largest relative error of the saved TorchScript file against ``model``; raises beyond ``tolerance``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path))
    return worst_relative_error(loaded, model, inputs, tolerance, "TorchScript")


def _write(model: nn.Module, path: Path, example: torch.Tensor, precision: str,
           calibration: list[torch.Tensor] | None) -> Path:
    return export_torchscript(model, path, example)


def torchscript_runner(path: str | Path, precision: str = "fp32") -> tuple[Run, str]:
    """The saved file loaded with ``torch.jit.load``, and the precision it runs at (the one it was written in)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        return torch.jit.load(str(path)), precision


TORCHSCRIPT = ExportFormat("torchscript", "TorchScript", ".pt", _write, torchscript_runner, {"fp32": FP32_TOLERANCE})

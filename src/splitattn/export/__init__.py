"""Export to ONNX (checked with onnxruntime) and TorchScript, both with a dynamic batch size.

The deploy-mode model (BatchNorm folded, training-only modules removed) is what gets exported;
each file is checked against the eval-mode PyTorch model at two batch sizes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..deploy import deploy
from .onnx import EXPORTERS, check_onnx, export_onnx, onnx_session, run_onnx
from .torchscript import check_torchscript, export_torchscript

FORMATS = ("onnx", "torchscript")

__all__ = [
    "EXPORTERS",
    "FORMATS",
    "check_onnx",
    "check_torchscript",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "onnx_session",
    "run_onnx",
]


def export_model(
    model: nn.Module,
    path: str | Path,
    fmt: str,
    input_size: tuple[int, int, int],
    check: bool = True,
    exporter: str = "dynamo",
) -> tuple[Path, float | None]:
    """Export ``model`` in deploy mode to ``path`` as ``fmt``; returns (path, worst relative error or None).

    The check runs the file at batch sizes 1 and 3 (the export itself traces batch 2), so a batch
    dimension frozen by mistake fails here rather than in production.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if len(input_size) != 3 or min(input_size) < 1:
        raise ValueError(f"input_size must be (channels, height, width), got {tuple(input_size)}")
    model = model.eval()
    deployed = deploy(model, memory_format="contiguous", fuse="none")  # exporters trace standard convs
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, *input_size, generator=generator)
    if fmt == "onnx":
        path = export_onnx(deployed, path, example, exporter=exporter)
    else:
        path = export_torchscript(deployed, path, example)
    if not check:
        return path, None
    inputs = [torch.randn(n, *input_size, generator=generator) for n in (1, 3)]
    checker = check_onnx if fmt == "onnx" else check_torchscript
    return path, checker(path, model, inputs)

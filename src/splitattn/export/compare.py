"""Checking an exported file against the PyTorch model it came from."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..deploy import relative_error
from ..errors import OutputMismatchError


def worst_relative_error(run: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, inputs: list[torch.Tensor],
                         tolerance: float, label: str) -> float:
    """Largest relative error of ``run`` (the exported file) against ``model`` over ``inputs``.

    Raises, naming ``label`` (``"ONNX"``, ``"TorchScript"``), on another output shape or beyond
    ``tolerance``.
    """
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            expected, got = model.eval()(x), run(x)
            if got.shape != expected.shape:
                raise OutputMismatchError(f"{label} output shape {tuple(got.shape)} != PyTorch {tuple(expected.shape)}")
            worst = max(worst, relative_error(got, expected))
    if worst > tolerance:
        raise OutputMismatchError(f"{label} output differs from PyTorch by {worst:.2e} relative (> {tolerance})")
    return worst

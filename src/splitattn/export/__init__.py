"""Export to ONNX (checked with onnxruntime), TorchScript and OpenVINO IR, all with a dynamic batch size.

The deploy-mode model (BatchNorm folded, training-only modules removed) is what gets exported;
each file is checked against the eval-mode PyTorch model at two batch sizes.

Precisions (``precision=``): ``fp32`` everywhere; ``bf16`` for OpenVINO only, an f32 IR meant to
be compiled with ``INFERENCE_PRECISION_HINT="bf16"`` (see :mod:`.openvino`); ``int8`` for ONNX
(QDQ, :mod:`.onnx_int8`) and OpenVINO (NNCF), post-training quantized on calibration images.
Each precision is checked against its own tolerance (fp32 1e-4 relative), and the check also
counts how often the file's top-1 class agrees with PyTorch's fp32 one.

Formats are data: :data:`FORMATS` holds one :class:`ExportFormat` per format (its writer, runner,
suffix, options, precisions and their tolerances), which this module, ``splitattn export`` and the
benchmark all read; a new format is one record in its own file and one entry there.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..deploy import deploy
from ..errors import SplitattnError
from .compare import worst_relative_error
from .format import FP32_TOLERANCE, PRECISIONS, ExportFormat, Precision, Run
from .formats import FORMATS, check_request, format_for
from .onnx import EXPORTERS, check_onnx, export_onnx, onnx_session, run_onnx
from .onnx_int8 import check_onnx_int8, export_onnx_int8, quantize_onnx
from .openvino import check_openvino, export_openvino, openvino_runner
from .torchscript import check_torchscript, export_torchscript

# Check batches cut from calibration images: sizes 1 and 3 first (as with random inputs), then the rest.
CHECK_BATCH = 8

__all__ = [
    "EXPORTERS",
    "FORMATS",
    "FP32_TOLERANCE",
    "PRECISIONS",
    "ExportCheck",
    "ExportFormat",
    "Precision",
    "check_onnx",
    "check_onnx_int8",
    "check_openvino",
    "check_request",
    "check_torchscript",
    "export_checked",
    "export_model",
    "export_onnx",
    "export_onnx_int8",
    "export_openvino",
    "export_torchscript",
    "format_for",
    "onnx_session",
    "openvino_runner",
    "quantize_onnx",
    "run_onnx",
    "tolerance_for",
]


@dataclass(frozen=True)
class ExportCheck:
    """What running the exported file next to the eval-mode PyTorch model found.

    ``error`` alone says little for int8, where a few per cent is normal: ``top1_agreement`` (the
    fraction of ``images`` whose arg-max class is PyTorch fp32's) says whether that error changes
    answers. ``ran_at`` is the precision the engine really computed in, which for OpenVINO bf16 on a
    CPU without bf16 instructions is fp32.
    """

    error: float
    tolerance: float
    top1_agreement: float
    images: int
    batch_sizes: tuple[int, ...]
    ran_at: str


def tolerance_for(fmt: str, precision: str) -> float:
    """The largest relative error the check of ``fmt`` in ``precision`` accepts.

    Args:
        fmt: a key of :data:`FORMATS`.
        precision: one of that format's precisions.
    """
    return format_for(fmt).tolerances[precision]


class _Recording(nn.Module):
    """``model``, keeping its outputs, so that the agreement count reuses the error check's forward passes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.outputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.outputs.append(self.model(x))
        return self.outputs[-1]


def _check(run: Run, model: nn.Module, inputs: list[torch.Tensor],
           tolerance: float, label: str, ran_at: str) -> ExportCheck:
    reference, got = _Recording(model), []

    def recording_run(x: torch.Tensor) -> torch.Tensor:
        got.append(run(x))
        return got[-1]

    error = worst_relative_error(recording_run, reference, inputs, tolerance, label)
    expected, actual = torch.cat(reference.outputs), torch.cat(got)
    agreement = (expected.argmax(1) == actual.argmax(1)).float().mean().item()
    return ExportCheck(error, tolerance, agreement, len(expected), tuple(len(x) for x in inputs), ran_at)


def _check_inputs(calibration: list[torch.Tensor] | None, input_size: tuple[int, int, int],
                  generator: torch.Generator) -> list[torch.Tensor]:
    """Batches of 1 and 3 (so a batch dimension frozen by mistake fails), then the rest of the images."""
    if calibration is None:
        return [torch.randn(n, *input_size, generator=generator) for n in (1, 3)]
    images = torch.cat([b.detach().cpu().float() for b in calibration])
    if tuple(images.shape[1:]) != tuple(input_size):
        raise SplitattnError(f"calibration images are {tuple(images.shape[1:])}, the export's input is "
                             f"{tuple(input_size)}")
    head = [images[:1], images[1:4]]
    return [b for b in head + list(images[4:].split(CHECK_BATCH)) if len(b)]


def export_checked(
    model: nn.Module,
    path: str | Path,
    fmt: str,
    input_size: tuple[int, int, int],
    check: bool = True,
    precision: str = "fp32",
    calibration: Iterable[torch.Tensor] | None = None,
    **options: str,
) -> tuple[Path, ExportCheck | None]:
    """Export ``model`` in deploy mode to ``path`` as ``fmt`` in ``precision``; returns (path, check or None).

    ``model`` itself is left as it is (mode included): a copy is deployed and exported, and the
    check compares the file with a copy in eval mode.

    Args:
        model: the network to export.
        path: the file to write (the format's own suffix, see :data:`FORMATS`).
        fmt: a key of :data:`FORMATS` (``"onnx"``, ``"torchscript"``, ``"openvino"``).
        input_size: (channels, height, width) the export traces at; the batch stays dynamic.
        check: run the file next to PyTorch at batch sizes 1 and 3 (and on the calibration images).
        precision: one of the format's precisions (``ExportFormat.tolerances``).
        calibration: normalised float batches (N, C, H, W) at ``input_size``, needed for int8
            (they set the quantization ranges) and optional for bf16. When given, the check runs on
            them rather than on random inputs: reduced precision errs differently on noise than on images.
        options: the format's own options (``exporter="dynamo"`` or ``"legacy"`` for ONNX).

    Raises:
        SplitattnError: a combination the format cannot write (see :func:`check_request`).
        OutputMismatchError: a file whose outputs differ from PyTorch's beyond the precision's tolerance.
    """
    export_format = check_request(fmt, precision, calibration is not None, options)
    if len(input_size) != 3 or min(input_size) < 1:
        raise SplitattnError(f"input_size must be (channels, height, width), got {tuple(input_size)}")
    batches = None if calibration is None else list(calibration)
    if batches is not None and not batches:
        raise SplitattnError("calibration got no batches")
    reference = copy.deepcopy(model).eval()  # the caller's model keeps its mode
    # exporters trace standard convs; the attention MLPs in the form the format's engine runs fastest
    deployed = deploy(reference, memory_format="contiguous", fuse="none", attention_mlp=export_format.attention_mlp)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, *input_size, generator=generator)
    inputs = _check_inputs(batches, input_size, generator)  # checks the calibration's shape before exporting
    path = export_format.write(deployed, Path(path), example, precision, batches, **options)
    if not check:
        return path, None
    label = export_format.label if precision == "fp32" else f"{export_format.label} {precision}"
    run, ran_at = export_format.runner(path, precision)
    return path, _check(run, reference, inputs, export_format.tolerances[precision], label, ran_at)


def export_model(model: nn.Module, path: str | Path, fmt: str, input_size: tuple[int, int, int],
                 **options: Any) -> tuple[Path, float | None]:
    """Export ``model`` in deploy mode to ``path`` as ``fmt``; returns (path, worst relative error or None).

    Takes the options of :func:`export_checked` (``check``, ``exporter``, ``precision``,
    ``calibration``), which returns the whole check, top-1 agreement included. The check runs the
    file at batch sizes 1 and 3 (the export itself traces batch 2), so a batch dimension frozen by
    mistake fails here rather than in production.
    """
    path, result = export_checked(model, path, fmt, input_size, **options)
    return path, None if result is None else result.error

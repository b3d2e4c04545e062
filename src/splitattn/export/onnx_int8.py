"""int8 ONNX in QDQ form: onnxruntime's static post-training quantization of the fp32 export.

``int8`` here means int8 weights (symmetric, one scale per output channel) and int8 activations
(one scale and zero point per tensor, from the min/max over the calibration images), written as
QuantizeLinear/DequantizeLinear pairs around the float ops. QDQ is the form every int8-capable
ONNX runtime reads (onnxruntime's CPU and TensorRT providers, OpenVINO): each fuses the pairs into
its own int8 kernels, and a runtime without them still runs the file, in float. The fp32 file is
written first, in a temporary folder, by :func:`~splitattn.deploy.onnx_runtime.export_onnx`.

The same file errs more on x86 CPUs without VNNI (AVX2 only): onnxruntime's int8 kernels there
multiply-add pairs into saturating int16 (``vpmaddubsw``). On seresnet18 at 64 px that was 9.6e-2
relative against 2.9e-2 for the same file run op by op in float; ``reduce_range=True`` (7-bit
weights) removes the saturation at a small cost on every CPU (3.7e-2 both ways), so it is an
option for files meant for such machines, not the default.

Needs ``onnxruntime`` (``pip install 'splitattn[export]'``), imported only when used.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SplitattnError
from .compare import worst_relative_error
from .format import INT8_TOLERANCE
from .onnx import _require, export_onnx, onnx_session, run_onnx


def _batches_as_arrays(batches: Iterable[torch.Tensor], input_shape: tuple[int, ...]) -> list[np.ndarray]:
    arrays = []
    for batch in batches:
        if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
            raise SplitattnError(f"calibration batches must be float tensors (N, C, H, W), got "
                                 f"{getattr(batch, 'shape', type(batch).__name__)}")
        if tuple(batch.shape[1:]) != input_shape:
            raise SplitattnError(f"calibration images must be {input_shape} (C, H, W) like the export, "
                                 f"got {tuple(batch.shape[1:])}")
        arrays.append(np.ascontiguousarray(batch.detach().cpu().float().numpy()))
    if not arrays:
        raise SplitattnError("int8 calibration got no images: pass an iterable of (N, C, H, W) batches")
    return arrays


def quantize_onnx(source: str | Path, path: str | Path, calibration: Iterable[torch.Tensor],
                  input_shape: tuple[int, ...], reduce_range: bool = False) -> Path:
    """Write the QDQ int8 version of the fp32 ONNX file ``source`` to ``path``, calibrated on ``calibration``.

    ``reduce_range``: 7-bit weights, for CPUs without VNNI (see the module's docstring).
    """
    quantization = _require("onnxruntime.quantization")
    arrays = _batches_as_arrays(calibration, input_shape)

    class Reader(quantization.CalibrationDataReader):
        """The calibration batches once through, as onnxruntime's calibrator asks for them."""

        def __init__(self) -> None:
            self._batches = iter(arrays)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {"input": batch}

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="splitattn-int8-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Shape inference and constant folding first, as onnxruntime advises: the legacy exporter
        # leaves the folded BN biases behind Constant nodes, and without this the quantizer skips
        # them ("Expected bias ... to be an initializer") instead of storing them as int32.
        quantization.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process, already taken, logs at WARNING
        try:
            quantization.quantize_static(
                str(prepared), str(path), Reader(), quant_format=quantization.QuantFormat.QDQ, per_channel=True,
                activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
                calibrate_method=quantization.CalibrationMethod.MinMax, reduce_range=reduce_range,
            )
        finally:
            logging.getLogger().setLevel(quiet)
    return path


def export_onnx_int8(
    model: nn.Module,
    path: str | Path,
    example: torch.Tensor,
    calibration: Iterable[torch.Tensor],
    exporter: str = "dynamo",
    reduce_range: bool = False,
) -> Path:
    """Export ``model`` (eval mode) to fp32 ONNX in a temporary folder, then write its int8 QDQ form to ``path``."""
    if example.ndim != 4:
        raise SplitattnError(f"example input must be 4-D (N, C, H, W), got shape {tuple(example.shape)}")
    with tempfile.TemporaryDirectory(prefix="splitattn-fp32-") as scratch:
        fp32 = export_onnx(model, Path(scratch) / "fp32.onnx", example, exporter=exporter)
        return quantize_onnx(fp32, path, calibration, tuple(example.shape[1:]), reduce_range)


def check_onnx_int8(path: str | Path, model: nn.Module, inputs: list[torch.Tensor],
                    tolerance: float = INT8_TOLERANCE) -> float:
    """Largest relative error of the int8 ONNX file against ``model``; raises beyond ``tolerance``."""
    session = onnx_session(path)
    return worst_relative_error(lambda x: run_onnx(session, x), model, inputs, tolerance, "int8 ONNX")

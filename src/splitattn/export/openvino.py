"""OpenVINO IR export (``MODEL.xml`` + ``MODEL.bin``) with a dynamic batch, checked on OpenVINO's CPU plugin.

What each precision means:

- ``fp32``: f32 weights, run with ``INFERENCE_PRECISION_HINT`` ``"f32"``. Pass that hint when
  compiling: on CPUs with bf16 instructions (AVX512_BF16, AMX) OpenVINO's CPU plugin runs a
  f32 IR in bf16 by default.
- ``bf16``: the same f32 file, meant to run with ``INFERENCE_PRECISION_HINT`` ``"bf16"``. The
  inference precision is a compile-time setting in OpenVINO, not a property of the file: the CPU
  plugin reads only KV-cache and dynamic-quantization options from an IR's ``runtime_options``
  (checked on 2026.4), and storing weights in bf16 would not make it compute in bf16. So the IR
  records the intended hint under ``rt_info["splitattn"]["inference_precision_hint"]`` for whoever
  deploys it, and they pass it to ``compile_model``. On a CPU without bf16 instructions the plugin
  quietly runs f32: :func:`compiled_precision` says which one a check really ran.
- ``int8``: NNCF post-training quantization (default preset: symmetric int8 weights per channel and
  activations per tensor) calibrated on the images given. The ops NNCF leaves in float are
  checked in f32 (hint ``"f32"``); compiled without a hint on a bf16 CPU they would run in bf16.

``openvino`` and ``nncf`` are optional (``pip install 'splitattn[openvino]'``) and imported only here,
inside the functions, so that importing :mod:`splitattn.export` costs nothing without them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from ..deploy.openvino_model import OPENVINO_ATTENTION_MLP
from ..deploy.openvino_runtime import compile_cpu, compiled_precision, nncf_quantize, single_images
from ..deploy.openvino_runtime import run_compiled as run_openvino
from ..errors import SplitattnError
from ..optional import require
from .compare import worst_relative_error
from .format import ExportFormat, Run

__all__ = ["OPENVINO", "PRECISIONS", "PRECISION_HINTS", "TOLERANCES", "check_openvino", "compile_cpu",
           "compile_openvino", "compiled_precision", "export_openvino", "openvino_runner", "precision_ran",
           "run_openvino", "single_images"]

# OpenVINO's name of the inference precision each of ours is compiled with.
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
# Largest relative error (max |diff| / max |logit|, per check batch) against the eval-mode PyTorch
# model that a check accepts. Measured on resnest14d and seresnet18 at 32 and 64 px on digit
# images, with random weights and with weights trained on the digits (99% and 97% val top-1):
# - bf16 on a Xeon with AMX: 3.7e-3 to 8.7e-3; top-1 agreement with fp32 0.92-1.0 untrained
#   (their logits are nearly tied), 1.0 trained.
# - int8, NNCF and onnxruntime QDQ, on AVX2 and on VNNI/AMX CPUs: 1.3e-2 to 1.8e-1 on the
#   calibration images, up to 2.1e-1 on held-out ones; the largest on trained models, whose
#   top-1 still agreed on >= 98.7% of the images (untrained: as low as 55%, near-ties again).
# The limits leave 2x (int8) to 6x (bf16) room over those. They catch a broken file (a wrong scale
# or layout errs by 1 and more); whether int8 changes answers is read from the top-1 agreement.
TOLERANCES = {"fp32": 1e-4, "bf16": 5e-2, "int8": 0.35}
PRECISIONS = tuple(TOLERANCES)


def _require(module: str):
    return require(module, "OpenVINO export", "openvino")


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise SplitattnError(f"OpenVINO precision must be one of {PRECISIONS}, got {precision!r}")


def _quantize(ov_model, calibration: Iterable[torch.Tensor], input_shape: tuple[int, ...]):
    images = single_images(calibration)
    wrong = {tuple(x.shape[1:]) for x in images} - {input_shape}
    if wrong:
        raise SplitattnError(f"calibration images must be {input_shape} (C, H, W) like the export, got {sorted(wrong)}")
    return nncf_quantize(ov_model, images, subset_size=len(images))


def export_openvino(
    model: nn.Module,
    path: str | Path,
    example: torch.Tensor,
    precision: str = "fp32",
    calibration: Iterable[torch.Tensor] | None = None,
) -> Path:
    """Convert ``model`` (eval mode) to an OpenVINO IR at ``path`` (``.xml``, weights beside it in ``.bin``).

    The input is named ``input`` and the output ``output``, as in the ONNX file; the batch is
    dynamic and channels, height and width are those of ``example``. Weights stay f32
    (``compress_to_fp16=False``): OpenVINO's default would halve the file but round every weight
    to fp16, an error the fp32 check would then blame on the export.
    """
    _check_precision(precision)
    if example.ndim != 4:
        raise SplitattnError(f"example input must be 4-D (N, C, H, W), got shape {tuple(example.shape)}")
    if precision == "int8" and calibration is None:
        raise SplitattnError("int8 needs calibration images (an iterable of (N, C, H, W) batches)")
    if precision != "int8" and calibration is not None:
        raise SplitattnError(f"calibration images are used only by int8; {precision} takes none")
    ov = _require("openvino")
    path = Path(path)
    if path.suffix != ".xml":
        raise SplitattnError(f"an OpenVINO IR is written as NAME.xml (weights in NAME.bin), got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's deprecation and input-check warnings
        ov_model = ov.convert_model(model.eval(), example_input=example.contiguous())
    ov_model.reshape([-1, *example.shape[1:]])
    ov_model.input(0).get_tensor().set_names({"input"})
    ov_model.output(0).get_tensor().set_names({"output"})
    if precision == "int8":
        ov_model = _quantize(ov_model, calibration, tuple(example.shape[1:]))
    ov_model.set_rt_info(precision, ["splitattn", "precision"])
    ov_model.set_rt_info(PRECISION_HINTS[precision], ["splitattn", "inference_precision_hint"])
    ov.save_model(ov_model, str(path), compress_to_fp16=False)
    return path


def compile_openvino(path: str | Path, precision: str = "fp32", threads: int | None = None):
    """The IR at ``path`` compiled for OpenVINO's CPU plugin with ``precision``'s inference hint.

    ``threads`` intra-op threads (default: torch's), as ``onnx_session`` does: OpenVINO would
    otherwise take every core, also the ones the PyTorch side of a check or benchmark is using.
    """
    _check_precision(precision)
    config = {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
              "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
    return compile_cpu(str(path), config)


def precision_ran(precision: str, compiled) -> str:
    """The precision (ours: fp32, bf16, int8) a model compiled for ``precision`` really runs at:
    fp32 where bf16 was asked of a CPU without bf16 instructions."""
    float_ops = compiled_precision(compiled)
    return precision if float_ops == PRECISION_HINTS[precision] else {"f32": "fp32"}.get(float_ops, float_ops)


def openvino_runner(path: str | Path, precision: str = "fp32") -> tuple[Run, str]:
    """A function running the IR at ``path`` compiled for ``precision``, and the precision (ours:
    fp32, bf16, int8) it really runs at: fp32 where bf16 was asked of a CPU without bf16 instructions."""
    compiled = compile_openvino(path, precision)
    return (lambda x: run_openvino(compiled, x)), precision_ran(precision, compiled)


def check_openvino(
    path: str | Path,
    model: nn.Module,
    inputs: list[torch.Tensor],
    precision: str = "fp32",
    tolerance: float | None = None,
) -> float:
    """Largest relative error of the IR (compiled for ``precision``) against ``model`` over ``inputs``;
    raises beyond ``tolerance`` (default: that precision's in :data:`TOLERANCES`)."""
    run, _ = openvino_runner(path, precision)
    limit = TOLERANCES[precision] if tolerance is None else tolerance
    return worst_relative_error(run, model, inputs, limit, f"OpenVINO {precision}")


def _write(model: nn.Module, path: Path, example: torch.Tensor, precision: str,
           calibration: list[torch.Tensor] | None) -> Path:
    """bf16's calibration images are only its check's: the file is the fp32 one (see the module notes)."""
    return export_openvino(model, path, example, precision, calibration if precision == "int8" else None)


def _cpu_default(precision: str) -> str:
    """What the CPU plugin computes a file at without a hint: bf16 where the CPU has bf16 instructions."""
    from ..deploy.cpu_features import native_bfloat16

    return "bf16" if precision == "fp32" and native_bfloat16() else precision


OPENVINO = ExportFormat("openvino", "OpenVINO", ".xml", _write, openvino_runner, TOLERANCES,
                        bench_precisions=("fp32", "int8"), engine_precision=_cpu_default,
                        attention_mlp=OPENVINO_ATTENTION_MLP)

"""OpenVINO as a deploy backend: our deployed network compiled by OpenVINO's CPU plugin, checked as every deploy is.

Why a second engine: on the CPUs measured (``benchmarks/layers.md``, ``docs/benchmarks.md``) our
PyTorch paths reach 0.66-0.95x of OpenVINO. The convolutions cost the same in both; ours loses in
what surrounds them (the attention's small ops, reorders between memory layouts, Python's launch
of a couple of hundred kernels) and, in int8, in oneDNN primitives PyTorch builds per call. Where
OpenVINO is installed, ``deploy(compile="openvino")`` and ``quantize(engine="openvino")`` hand
the user the model OpenVINO runs, under the same contract as our own paths: outputs checked
against eval mode (``deploy``'s tolerance for the precision), int8 checked by top-1 agreement.

What is handed over is the deployed network (BatchNorms folded, training modules gone, attention
MLPs as matrix products except the gates', :data:`OPENVINO_ATTENTION_MLP`), converted with
``openvino.convert_model`` at the example's static shape and compiled with the setup OpenVINO
documents for one request at a time: ``PERFORMANCE_HINT`` ``LATENCY``, the process's thread count
(torch's), and the precision asked for (``INFERENCE_PRECISION_HINT`` ``f32`` for float32 and for
int8's float ops, which the plugin would otherwise run in bf16 on CPUs that have it). Other batch
sizes are padded or split to the compiled one (:class:`FixedBatch`). Two streams of half a batch
each were tried and measured within noise of one (resnest50 and seresnet50 at batch 16, fp32 and
int8, AVX-512 EPYC, 2 threads), so there is one.

Saved (``save_openvino``) it is an IR: the graph as XML, the weights as raw binary, our metadata
(classes, input settings, precision) in the XML's ``rt_info``. Unlike an AOT package it holds no
code, so a file from elsewhere is as safe to load as a safetensors file, and it runs on any CPU
OpenVINO supports, compiled when loaded (a second or two for a ResNeSt-50).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import MissingFileError, SplitattnError
from .aot import static_shape_record
from .frozen_model import StaticShapeModel
from .openvino_runtime import compile_cpu, compiled_precision, nncf_quantize, require_openvino, single_images

FORMAT = "splitattn-openvino/1"
INFO_KEY = ("splitattn", "info")
# Our precision -> OpenVINO's name of the precision the float ops are compiled to run at.
FLOAT_OPS_AT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
_INT8_RUNTIME = {"i8", "u8"}
_WEIGHTED_OPS = {"Convolution", "GroupConvolution", "FullyConnected", "MatMul"}
# The attention MLPs' form OpenVINO is handed (deploy's attention_mlp): the gates' (squeeze-excitation)
# as their 1 x 1 convs, the others as matrix products. Measured as int8 through NNCF, MLPs in float,
# 12 paired rounds per cell (AMD EPYC with AVX-512 VNNI/BF16, 2 threads), convs / matrix products:
# seresnet50 1.06x at batch 1 (faster in 12 of 12 rounds) and 1.02x at 16 (6 of 12; 1.08-1.09x at
# both on an AMX Xeon); resnest50 0.98x and 1.00x, skresnext50_32x4d 0.97x and 1.01x: there the
# matrix products stay.
OPENVINO_ATTENTION_MLP = "matmul-except-gates"


class OpenVinoModel(StaticShapeModel):
    """A network compiled by OpenVINO's CPU plugin, as a module that takes and returns float32 tensors.

    Any batch size (padded or split to ``batch_size``, the one it was compiled for), images of the
    compiled size only. It has no parameters: the weights live in the compiled model.

    Args:
        ov_model: the ``openvino.Model`` at the static shape ``info["input_shape"]``.
        info: the record it is saved with (classes, input settings, ``precision``).
        threads: intra-op threads (default: torch's, so it shares the cores as torch would).
    """

    def __init__(self, ov_model: Any, info: dict[str, Any], threads: int | None = None) -> None:
        setup = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
                 "INFERENCE_PRECISION_HINT": FLOAT_OPS_AT[str(info["precision"])]}
        compiled = compile_cpu(ov_model, setup)
        super().__init__(info, "an OpenVINO model", "deploy or quantize it", _request_runner(compiled))
        self.setup = setup
        object.__setattr__(self, "_ov_model", ov_model)  # OpenVINO objects, not modules
        object.__setattr__(self, "_compiled", compiled)

    @property
    def precision(self) -> str:
        """``fp32``, ``bf16`` or ``int8``: what it was made for."""
        return str(self.info["precision"])

    @property
    def float_ops_ran_at(self) -> str:
        """What the plugin computes the float ops in (``f32``, ``bf16``): its answer, not the hint
        (bf16 asked of a CPU without bf16 instructions runs f32)."""
        return compiled_precision(self._compiled)

    @property
    def int8_layers(self) -> int:
        """How many convolutions and matrix products the plugin runs in int8."""
        return sum(1 for op in self._compiled.get_runtime_model().get_ordered_ops()
                   if op.get_rt_info()["layerType"].astype(str) in _WEIGHTED_OPS
                   and op.get_rt_info()["runtimePrecision"].astype(str).lower() in _INT8_RUNTIME)

    @property
    def float_layers(self) -> list[str]:
        """The modules (``model.named_modules()`` names) int8 left in float."""
        return list(self.info.get("float_layers", []))



def _request_runner(compiled: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """One synchronous inference request of ``compiled``, from a float tensor to a tensor."""
    request = compiled.create_infer_request()

    def run(x: torch.Tensor) -> torch.Tensor:
        result = request.infer({0: x.detach().cpu().numpy()}, share_inputs=True)
        return torch.from_numpy(result[0].copy())  # the request reuses its output buffer on the next call

    return run


def _converted(model: nn.Module, shape: Sequence[int]) -> Any:
    """``model`` as an ``openvino.Model`` at the static ``shape``, input named ``input``, output ``output``."""
    ov = require_openvino("compile='openvino'")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's deprecation and input-check warnings
            ov_model = ov.convert_model(model.eval(), example_input=torch.zeros(*shape))
        ov_model.reshape(list(shape))
    except Exception as error:  # OpenVINO's conversion or shape inference: its first lines say which op
        said = " ".join(str(error).split())[:400]
        raise SplitattnError(
            f"OpenVINO cannot build this network for input {list(shape)}: {said}. A network whose feature maps "
            "shrink below a pooling window (a ResNeSt-D's average-pool shortcut under 32 px) is one such case: "
            "use larger images, or our own compile modes (compile='inductor' or 'aot')") from None
    ov_model.input(0).get_tensor().set_names({"input"})
    ov_model.output(0).get_tensor().set_names({"output"})
    return ov_model


def compile_openvino(model: nn.Module, example: torch.Tensor, precision: str = "fp32",
                     info: dict[str, Any] | None = None) -> OpenVinoModel:
    """``model`` (a deployed float32 network) compiled by OpenVINO for inputs shaped like ``example``.

    Args:
        model: the network, float32, on the CPU.
        example: one batch; its shape (batch size included) is the one compiled.
        precision: ``fp32`` or ``bf16`` (bf16 runs f32 on a CPU without bf16 instructions).
        info: metadata to record (default: classes and input settings read from ``model``).
    """
    if precision not in ("fp32", "bf16"):
        raise SplitattnError(f"OpenVINO deploys in fp32 or bf16, got {precision!r} (int8: quantize(engine='openvino'))")
    shape = tuple(example.shape)
    record = static_shape_record(model, info, shape, format=FORMAT, precision=precision)
    return OpenVinoModel(_converted(model, shape), record)


def _ignored_scope(names: Sequence[str]) -> Any:
    """NNCF's ignored scope for the modules ``names``: the nodes ``convert_model`` names after them."""
    if not names:
        return None
    nncf = require_openvino("int8 with OpenVINO", "nncf")

    return nncf.IgnoredScope(patterns=[rf"__module\.{re.escape(name)}/.*" for name in names])


def quantize_openvino(model: nn.Module, calibration: Iterable[torch.Tensor], batch_size: int,
                      float_layers: Sequence[str] = (), info: dict[str, Any] | None = None) -> OpenVinoModel:
    """``model`` (a deployed float32 network) quantized to int8 by NNCF and compiled by OpenVINO.

    NNCF's performance preset for the CPU (its default): int8 weights per channel, symmetric int8
    activations per tensor, calibrated one image at a time (its statistics are per item) on every
    calibration image; without bias correction (below).

    Args:
        model: the network, float32, on the CPU.
        calibration: float32 image batches, preprocessed as for evaluation.
        batch_size: the batch size compiled (others are padded or split to it).
        float_layers: module names (``model.named_modules()``) whose weighted op stays in float.
        info: metadata to record (default: classes and input settings read from ``model``).
    """
    nncf = require_openvino("int8 with OpenVINO", "nncf")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    images = single_images(calibration)
    shape = (batch_size, *images[0].shape[1:])
    ov_model = _converted(model, (1, *shape[1:]))
    ignored = _ignored_scope(float_layers)
    # No bias correction, as PT2E does none: NNCF's default (fast) one lowered top-1 agreement with
    # float32 from 95.5% to 88% on a digits resnest14d calibrated on 64 images (its full one: 95.8%).
    quantized = nncf_quantize(ov_model, images, subset_size=len(images), preset=nncf.QuantizationPreset.PERFORMANCE,
                              advanced_parameters=AdvancedQuantizationParameters(disable_bias_correction=True),
                              **({"ignored_scope": ignored} if ignored is not None else {}))
    quantized.reshape(list(shape))
    record = static_shape_record(model, info, shape, format=FORMAT, precision="int8")
    record.update(calibration_images=len(images), float_layers=list(float_layers))
    return OpenVinoModel(quantized, record)


def save_openvino(model: OpenVinoModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (``NAME.xml``, its weights in ``NAME.bin``), our metadata inside.

    Both files are written into a temporary folder beside ``path`` and moved into place, the
    ``.xml`` last: it is what names the model, so an interrupted save leaves the old model or
    none, never a half-written one.

    Args:
        model: what ``deploy(compile="openvino")`` or ``quantize(engine="openvino")`` returned; its
            ``info`` (edit ``info["pretrained_cfg"]`` to add class names) is written with it.
        path: the ``.xml`` file to write.
    """
    if not isinstance(model, OpenVinoModel):
        raise SplitattnError(f"save_openvino takes a model of compile='openvino' or quantize(engine='openvino'), "
                             f"got {type(model).__name__}")
    ov = require_openvino("saving an OpenVINO model")
    path = Path(path)
    if path.suffix != ".xml":
        raise SplitattnError(f"an OpenVINO model is saved as NAME.xml (weights in NAME.bin), got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model._ov_model.set_rt_info(json.dumps({**model.info, "format": FORMAT}), list(INFO_KEY))
    scratch = Path(tempfile.mkdtemp(prefix=f".{path.stem}.partial-", dir=path.parent))
    try:
        ov.save_model(model._ov_model, str(scratch / "model.xml"), compress_to_fp16=False)
        os.replace(scratch / "model.bin", path.with_suffix(".bin"))
        os.replace(scratch / "model.xml", path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path


def read_openvino_info(ov_model: Any) -> dict[str, Any] | None:
    """The metadata ``save_openvino`` wrote into an ``openvino.Model``, or None if it has none."""
    if not ov_model.has_rt_info(list(INFO_KEY)):
        return None
    try:
        info = json.loads(ov_model.get_rt_info(list(INFO_KEY)).astype(str))
    except json.JSONDecodeError:
        return None
    return info if isinstance(info, dict) and info.get("format") == FORMAT else None


def load_openvino(path: str | os.PathLike, threads: int | None = None) -> OpenVinoModel:
    """A model written by :func:`save_openvino`, compiled for this CPU.

    Args:
        path: the ``.xml`` file (its ``.bin`` beside it).
        threads: intra-op threads (default: torch's).
    """
    path = Path(path)
    for needed in (path, path.with_suffix(".bin")):
        if not needed.is_file():
            raise MissingFileError(f"no OpenVINO model at {path}: {needed} is missing")
    ov = require_openvino("loading an OpenVINO model")
    try:
        ov_model = ov.Core().read_model(str(path))
    except Exception as error:  # not an IR, or a damaged one: OpenVINO's message
        raise SplitattnError(f"{path} could not be read as an OpenVINO model: {error}") from None
    info = read_openvino_info(ov_model)
    if info is None:
        raise SplitattnError(f"{path} is an OpenVINO IR but not one of splitattn's deployed models (no "
                             f"{'/'.join(INFO_KEY)} of format {FORMAT!r}: classes and input settings unknown); "
                             "run it with openvino directly, or write it with splitattn.deploy.save_openvino")
    return OpenVinoModel(ov_model, info, threads)

"""The peers a timm user would otherwise pick: timm's own model exported plainly and run by the engines.

Someone deploying these networks on CPU without this package takes ``timm.create_model(...)`` and
hands it to an engine the way the engines' getting-started pages show, with nothing tuned: that is
the bar a deploy path has to clear, beside the engines running our own exported file (which the
benchmark configures at their best, :mod:`.engine_setup`). Same weights as ours (converted to
timm's layout), same batch, same thread count:

- ``timm->onnx``: ``torch.onnx.export(model, (x,), path)`` with its defaults (static shapes: no
  dynamic axes are asked for), an onnxruntime ``InferenceSession`` with default options except the
  thread count and no spinning between calls (kept for every onnxruntime candidate: its busy-waiting
  would slow the next candidate in the interleaved rounds).
- ``timm->openvino``: ``openvino.convert_model(model, example_input=x)``, compiled for ``"CPU"``
  with its default hints except ``INFERENCE_NUM_THREADS`` (so at its default precision: bf16
  where the CPU has it natively).
- ``timm->openvino+int8``: that model quantized by NNCF with its defaults,
  ``nncf.quantize(model, nncf.Dataset(calibration batches))``, compiled the same way.

Every OpenVINO compile and quantize runs inside ``preserved_signal_stack``: the CPU plugin
otherwise leaves the thread's signal stack pointing at memory it frees, and a later signal kills
the process (:mod:`splitattn.deploy.signal_stack`).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..deploy.onnx_runtime import onnx_session, run_onnx
from ..deploy.openvino_runtime import nncf_quantize
from ..errors import SplitattnError
from ..export.openvino import compile_cpu, run_openvino
from .config import BenchConfig, Candidate, calibration, float32_cpu_only
from .engine_setup import Setup, onnx_setup, openvino_setup
from .references import reference_builders

DTYPE_OF = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


@dataclass(frozen=True)
class TimmEngine:
    """One plain timm-to-engine path: the packages it needs and how it is built."""

    packages: tuple[str, ...]
    build: Callable[[nn.Module, BenchConfig, torch.Tensor, Path], tuple[Callable[[torch.Tensor], torch.Tensor],
                                                                        str, Setup]]


def _onnx(model: nn.Module, config: BenchConfig, x: torch.Tensor, workdir: Path):
    path = workdir / f"timm-{config.model}-b{config.batch_size}.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path))
    session = onnx_session(path)  # onnxruntime's defaults, but the thread count and no spinning
    shape = session.get_inputs()[0].shape
    setup = onnx_setup(torch.get_num_threads(), f"{shape} as torch.onnx.export wrote it")
    setup = {"model": "torch.onnx.export(timm model, (x,), path) at its defaults", **setup,
             "graph_optimization_level": "default (ORT_ENABLE_ALL)"}
    return (lambda batch: run_onnx(session, batch)), "float32", setup


def _openvino_model(model: nn.Module, x: torch.Tensor):
    import openvino as ov

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return ov.convert_model(model, example_input=x)


def _openvino_compiled(ov_model, precision: str, how: str):
    shape = str(ov_model.input(0).get_partial_shape())
    compiled = compile_cpu(ov_model, {"INFERENCE_NUM_THREADS": torch.get_num_threads()})
    setup = openvino_setup(compiled, model=how, input=shape,
                           PERFORMANCE_HINT=f"default ({compiled.get_property('PERFORMANCE_HINT')})",
                           INFERENCE_NUM_THREADS=str(torch.get_num_threads()))
    float_ops = setup["float ops ran at"]
    computes_in = precision if precision == "int8" else DTYPE_OF.get(float_ops, float_ops)
    return (lambda batch: run_openvino(compiled, batch)), computes_in, setup


def _openvino(model: nn.Module, config: BenchConfig, x: torch.Tensor, workdir: Path):
    how = "openvino.convert_model(timm model, example_input=x)"
    return _openvino_compiled(_openvino_model(model, x), "float32", how)


def _openvino_int8(model: nn.Module, config: BenchConfig, x: torch.Tensor, workdir: Path):
    ov_model = _openvino_model(model, x)
    batches = [batch.numpy() for batch in calibration(config)]
    quantized = nncf_quantize(ov_model, batches)  # NNCF's defaults, on whole batches as a timm user would pass them
    how = f"convert_model, then nncf.quantize with its defaults on {len(batches)} random batches of {config.batch_size}"
    return _openvino_compiled(quantized, "int8", how)


# Variant (and row label) -> the plain path a timm user would take.
TIMM_ENGINES: dict[str, TimmEngine] = {
    "timm->onnx": TimmEngine(("timm", "onnx", "onnxruntime"), _onnx),
    "timm->openvino": TimmEngine(("timm", "openvino"), _openvino),
    "timm->openvino+int8": TimmEngine(("timm", "openvino", "nncf"), _openvino_int8),
}


def timm_engine_candidate(variant: str, state_dict: dict, config: BenchConfig, x: torch.Tensor,
                          workdir: Path) -> Candidate:
    """timm's model of ``config.model`` with our weights (``state_dict``), exported plainly and run by an engine.

    Args:
        variant: a key of :data:`TIMM_ENGINES`.
        state_dict: our model's weights (converted to timm's layout here).
        config: the benchmark's configuration (float32 on CPU).
        x: the batch it runs on.
        workdir: where the exported file is written.
    """
    float32_cpu_only(config, variant)
    builders = reference_builders(config.model, state_dict=state_dict)
    if "timm" not in builders:
        raise SplitattnError(f"{variant} needs timm's model of {config.model!r}: timm is not installed or has no "
                             "such network (pip install timm)")
    model = builders["timm"]().eval()
    run, computes_in, setup = TIMM_ENGINES[variant].build(model, config, x.contiguous(), workdir)
    contiguous = x.contiguous()
    return Candidate(variant, lambda: run(contiguous), None, observable_memory=False, precision=computes_in,
                     setup=setup)

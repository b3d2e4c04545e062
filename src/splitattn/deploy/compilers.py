"""The compile modes ``deploy(compile=...)`` accepts, one table of small records.

A compile mode is a function from the deployed eager model (and the example input and the dtype it
is to compute in) to what ``deploy`` returns; ``deploy`` then checks *that* object's outputs, so a
compiler that changed the numbers is caught. A new mode is one entry here (tests swap an entry to
prove the check runs after compiling).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import SplitattnError, one_of
from .inductor import FrozenInductorModel
from .openvino_model import OPENVINO_ATTENTION_MLP
from .precision import PRECISION_OF_DTYPE


@dataclass(frozen=True)
class Compiler:
    """One compile mode.

    Args:
        name: what ``compile=`` takes (``None`` for eager).
        build: ``(deployed model, example input or None, dtype to compute in) -> the model deploy
            returns``; the model is already in that dtype unless ``sets_precision``.
        needs_example: it traces, so ``deploy`` must have ``example_input``.
        traces: it traces the network itself, so the convs must stay standard ``nn.Conv2d``
            (tracers cannot see into oneDNN's packed weights; they pack and fuse by themselves).
        sets_precision: it is handed the float32 model and computes in ``dtype`` by its own means
            (an engine's precision setting), instead of running a model ``deploy`` cast.
        precisions: the dtypes it computes in, where it cannot take every dtype ``deploy`` does.
        cpu_only: an engine for the CPU (OpenVINO's CPU plugin, onnxruntime's CPU provider), so a
            model elsewhere is refused before anything is traced.
        attention_mlp: the attention MLPs' form it is handed under ``deploy(attention_mlp="auto")``,
            a key of :data:`~.attention_matmul.ATTENTION_MLP_FORMS`: the one it runs fastest.
    """

    name: str | None
    build: Callable[[nn.Module, torch.Tensor | None, torch.dtype], nn.Module]
    needs_example: bool = False
    traces: bool = True
    sets_precision: bool = False
    precisions: tuple[torch.dtype, ...] | None = None
    cpu_only: bool = False
    attention_mlp: str = "matmul"


def _eager(model: nn.Module, _example: torch.Tensor | None, _dtype: torch.dtype) -> nn.Module:
    return model


def _inductor(model: nn.Module, _example: torch.Tensor | None, _dtype: torch.dtype) -> nn.Module:
    return FrozenInductorModel(model)


def _aot(model: nn.Module, example: torch.Tensor | None, dtype: torch.dtype) -> nn.Module:
    """AOTInductor at the example's static shape (:mod:`.aot`): compiled now, saved with ``save_package``,
    loaded later without compiling; the package records the precision it computes in."""
    from .aot import compile_package, model_info

    if example is None:
        raise SplitattnError("compile='aot' compiles for one input shape and needs example_input")
    precision = PRECISION_OF_DTYPE.get(dtype, str(dtype).removeprefix("torch."))
    return compile_package(model, example, {**model_info(model), "precision": precision})


def _openvino(model: nn.Module, example: torch.Tensor | None, dtype: torch.dtype) -> nn.Module:
    """OpenVINO's CPU plugin at the example's static shape, computing in ``dtype`` (:mod:`.openvino_model`)."""
    from .openvino_model import compile_openvino

    if example is None:
        raise SplitattnError("compile='openvino' compiles for one input shape and needs example_input")
    return compile_openvino(model, example, PRECISION_OF_DTYPE[dtype])


def _onnxruntime(model: nn.Module, example: torch.Tensor | None, _dtype: torch.dtype) -> nn.Module:
    """onnxruntime's CPU provider on the network exported at the example's static shape (:mod:`.onnxruntime_model`)."""
    from .onnxruntime_model import compile_onnxruntime

    if example is None:
        raise SplitattnError("compile='onnxruntime' exports for one input shape and needs example_input")
    return compile_onnxruntime(model, example)


def _jit(model: nn.Module, example: torch.Tensor | None, _dtype: torch.dtype) -> nn.Module:
    """Trace, freeze and ``optimize_for_inference`` (which fuses conv + ReLU through oneDNN)."""
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices and the input-check TracerWarning
        traced = torch.jit.trace(model, example, check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


COMPILERS: dict[str | None, Compiler] = {c.name: c for c in (
    Compiler(None, _eager, traces=False),
    Compiler("inductor", _inductor),
    Compiler("jit", _jit, needs_example=True),
    Compiler("aot", _aot, needs_example=True),
    Compiler("openvino", _openvino, needs_example=True, sets_precision=True,
             precisions=(torch.float32, torch.bfloat16), cpu_only=True, attention_mlp=OPENVINO_ATTENTION_MLP),
    Compiler("onnxruntime", _onnxruntime, needs_example=True, precisions=(torch.float32,), cpu_only=True),
)}


def compiler_for(mode: str | None) -> Compiler:
    """The :class:`Compiler` for ``compile=mode``.

    Args:
        mode: a key of :data:`COMPILERS`.

    Raises:
        ValueError: an unknown mode, naming the known ones.
    """
    return one_of(COMPILERS, mode, "compile")

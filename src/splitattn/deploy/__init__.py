"""Deploy mode: an inference-only model that computes the same function as eval mode, faster.

``deploy(model)`` folds every BatchNorm into the conv before it (stem, blocks, shortcuts, the
bn0/bn1 inside split attention, the BNs of selective-kernel branches and their attention),
replaces DropBlock / DropPath / Dropout by identities, puts the weights in the memory format that
is faster for the expected batch size, and on CPU hands every conv to oneDNN with its weight
packed once and its ReLU (and the residual add at the end of a block) fused in. It can compile the
result instead. Outputs stay within 1e-4 relative of the eval-mode model; ``example_input`` makes
``deploy`` check that itself, on the very object it returns (compiled or not).

``dtype=torch.bfloat16`` (or float16) runs the same deployed network in reduced precision: the
BatchNorms are folded in float32 first, then the weights are cast; the attention's pooling and
softmax still accumulate in float32 (``layers.pooling``, ``layers.split_attn``). The model keeps
taking and returning float32 tensors (it casts at its input and output), so callers do not change;
its outputs are checked against float32 eval mode with ``DEPLOY_TOLERANCES[dtype]``.

``deploy`` is a pipeline of named steps, each a function below: copy, reference outputs, strip for
inference (fold, drop training modules, attention MLPs as matrix products), precision, memory
format, oneDNN packing, compile, check, record. What it made is one
:class:`Deployment` record on the result (``deployment_of(model)``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import OutputMismatchError, SplitattnError, one_of
from .aot import AotModel, load_package, read_package_info, save_package
from .attention_matmul import ATTENTION_MLP_FORMS, PooledLinear, attention_mlps_as_matmuls
from .compilers import COMPILERS, Compiler, compiler_for
from .fixed_batch import FixedBatch
from .fold import count_batchnorms, fold_batchnorms, fold_bn_into_conv
from .fuse import pack_and_fuse
from .memory_format import MEMORY_FORMATS, resolve_memory_format
from .onnxruntime_model import OnnxRuntimeModel, compile_onnxruntime, load_onnxruntime, save_onnxruntime
from .openvino_model import OpenVinoModel, compile_openvino, load_openvino, quantize_openvino, save_openvino
from .packed_conv import PackedConv2d, onednn_unavailable_reason
from .precision import DEPLOY_TOLERANCE, DEPLOY_TOLERANCES, cast_floats, compute_in, warn_if_bfloat16_is_emulated
from .record import RECORD_ATTRIBUTE, Deployment, deployment_of
from .strip import strip_training_modules

COMPILE_MODES = tuple(COMPILERS)
FUSE_MODES = ("auto", "onednn", "none")
ATTENTION_MLP_MODES = ("auto", *ATTENTION_MLP_FORMS)
DEFAULT_IMG_SIZE = 224

__all__ = [
    "ATTENTION_MLP_FORMS",
    "ATTENTION_MLP_MODES",
    "COMPILERS",
    "COMPILE_MODES",
    "DEPLOY_TOLERANCE",
    "DEPLOY_TOLERANCES",
    "FUSE_MODES",
    "MEMORY_FORMATS",
    "AotModel",
    "Compiler",
    "Deployment",
    "FixedBatch",
    "OnnxRuntimeModel",
    "OpenVinoModel",
    "PackedConv2d",
    "PooledLinear",
    "attention_mlps_as_matmuls",
    "compile_onnxruntime",
    "compile_openvino",
    "count_batchnorms",
    "deploy",
    "deployment_of",
    "fold_batchnorms",
    "fold_bn_into_conv",
    "load_onnxruntime",
    "load_openvino",
    "load_package",
    "pack_and_fuse",
    "quantize_openvino",
    "read_package_info",
    "relative_error",
    "save_onnxruntime",
    "save_openvino",
    "save_package",
    "strip_training_modules",
]


def relative_error(ours: torch.Tensor | list, reference: torch.Tensor | list) -> float:
    """Worst relative error over the output, or over each map of a backbone's list of maps."""
    if isinstance(reference, (list, tuple)):
        return max(relative_error(o, r) for o, r in zip(ours, reference, strict=True))
    return ((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


def _validate(compile: str | None, fuse: str, batch_size: int, dtype: torch.dtype | None,
              example_input: torch.Tensor | None, attention_mlp: str) -> Compiler:
    compiler = compiler_for(compile)
    if fuse not in FUSE_MODES:
        raise SplitattnError(f"fuse must be one of {FUSE_MODES}, got {fuse!r}")
    one_of(dict.fromkeys(ATTENTION_MLP_MODES), attention_mlp, "attention_mlp")
    if batch_size < 1:
        raise SplitattnError(f"batch_size must be >= 1, got {batch_size}")
    if dtype is not None and dtype not in DEPLOY_TOLERANCES:
        raise SplitattnError(f"dtype must be one of {[str(d) for d in DEPLOY_TOLERANCES]} (or None), got {dtype}")
    if dtype is not None and compiler.precisions is not None and dtype not in compiler.precisions:
        raise SplitattnError(f"compile={compile!r} computes in {[str(d) for d in compiler.precisions]}, got {dtype}")
    if compiler.needs_example and example_input is None:
        raise SplitattnError(f"compile={compile!r} traces the model and needs an example input (example_input=...)")
    return compiler


def _check_device(model: nn.Module, compiler: Compiler) -> None:
    """A CPU engine is handed a CPU model: elsewhere tracing would fail on a device mismatch, deep inside."""
    devices = {tensor.device.type for tensor in (*model.parameters(), *model.buffers())}
    if compiler.cpu_only and devices - {"cpu"}:
        raise SplitattnError(f"compile={compiler.name!r} runs on the CPU, and the model is on "
                             f"{', '.join(sorted(devices - {'cpu'}))}: deploy model.cpu() with a CPU example_input")


def _reference_outputs(model: nn.Module, example_input: torch.Tensor | None) -> Any:
    """Eval-mode outputs on ``example_input``, taken before anything is folded (None without an example)."""
    if example_input is None:
        return None
    with torch.no_grad():
        return model(example_input)


def _strip_for_inference(model: nn.Module, attention_mlp: str, compiler: Compiler) -> int:
    """Fold the BatchNorms, drop the training-only modules, turn the attention MLPs into matrix
    products as ``attention_mlp`` says (``"auto"``: the compile mode's form), freeze the parameters
    (all in place); returns how many MLP layers became matrix products."""
    fold_batchnorms(model)
    strip_training_modules(model)
    form = compiler.attention_mlp if attention_mlp == "auto" else attention_mlp
    matmuls = attention_mlps_as_matmuls(model, form)
    for param in model.parameters():
        param.requires_grad_(False)
    return matmuls


def _set_precision(model: nn.Module, dtype: torch.dtype | None, compiler: Compiler) -> torch.dtype:
    """Cast to ``dtype`` after folding (exact only in float32), unless the compiler sets the precision
    itself; returns the dtype it computes in."""
    current = next(model.parameters()).dtype
    if compiler.sets_precision:
        return dtype or current
    if dtype == torch.bfloat16 and next(model.parameters()).device.type == "cpu":
        warn_if_bfloat16_is_emulated()
    if dtype is None or dtype == current:
        return current
    compute_in(model, dtype)
    return dtype


def _set_memory_format(model: nn.Module, memory_format: str, batch_size: int,
                       example_input: torch.Tensor | None) -> torch.memory_format:
    fmt = resolve_memory_format(model, memory_format, batch_size, example_input)
    model.to(memory_format=fmt)
    return fmt


def _use_onednn(model: nn.Module, fuse: str, compiler: Compiler) -> bool:
    if fuse == "none":
        return False
    param = next(model.parameters())
    reason = onednn_unavailable_reason(param.device, param.dtype)
    if fuse == "onednn":
        if compiler.traces:
            raise SplitattnError(
                f"fuse='onednn' is for eager mode: compilers cannot trace oneDNN's packed weights, and "
                f"compile={compiler.name!r} packs and fuses by itself (use fuse='none' or 'auto')"
            )
        if reason is not None:
            raise SplitattnError(f"fuse='onednn' is not possible: {reason}")
        return True
    return not compiler.traces and reason is None


def _default_example(model: nn.Module, batch_size: int) -> torch.Tensor:
    in_chans = getattr(model, "in_chans", None)
    if in_chans is None:
        raise SplitattnError(
            f"{type(model).__name__} does not say how many input channels it takes (no in_chans); "
            "pass example_input=... so deploy can pack its convs for that shape"
        )
    param = next(model.parameters())
    return torch.zeros(batch_size, in_chans, DEFAULT_IMG_SIZE, DEFAULT_IMG_SIZE, device=param.device, dtype=param.dtype)


def _pack(model: nn.Module, fuse: str, compiler: Compiler, example_input: torch.Tensor | None, batch_size: int,
          dtype: torch.dtype, fmt: torch.memory_format) -> Mapping[str, int]:
    """Pack the convs for oneDNN and fuse their epilogues where ``fuse`` and the compiler allow; returns the counts."""
    if not _use_onednn(model, fuse, compiler):
        return {}
    example = example_input if example_input is not None else _default_example(model, batch_size)
    return pack_and_fuse(model, cast_floats(example, dtype).contiguous(memory_format=fmt))


def _compile(model: nn.Module, compiler: Compiler, example_input: torch.Tensor | None,
             fmt: torch.memory_format, dtype: torch.dtype) -> nn.Module:
    example = None if example_input is None else example_input.contiguous(memory_format=fmt)
    return compiler.build(model, example, dtype)


def _check_outputs(deployed: nn.Module, example_input: torch.Tensor | None, reference: Any,
                   dtype: torch.dtype) -> float | None:
    """The worst relative error of what deploy returns against eval mode; raises beyond the dtype's tolerance."""
    if example_input is None:
        return None
    with torch.no_grad():
        error = relative_error(deployed(example_input), reference)
    tolerance = DEPLOY_TOLERANCES.get(dtype, DEPLOY_TOLERANCE)
    if not error <= tolerance:  # NaN fails too
        raise OutputMismatchError(f"deployed model differs from eval mode by {error:.2e} relative "
                                  f"(> {tolerance} for {dtype})")
    return error


def _record(deployed: nn.Module, deployment: Deployment) -> nn.Module:
    """Leave ``deployment`` on the result, where :func:`deployment_of` reads it.

    ``setattr``, not ``deployed.deployment = ...``: ``nn.Module.__setattr__`` is typed for tensors and
    modules.
    """
    setattr(deployed, RECORD_ATTRIBUTE, deployment)
    return deployed


def deploy(
    model: nn.Module,
    *,
    batch_size: int = 1,
    memory_format: str = "auto",
    example_input: torch.Tensor | None = None,
    compile: str | None = None,
    fuse: str = "auto",
    dtype: torch.dtype | None = None,
    attention_mlp: str = "auto",
    inplace: bool = False,
) -> nn.Module:
    """Return ``model`` in deploy mode: a copy, with ``model`` itself left as it was, unless ``inplace``.

    Args:
        model: the network (any mode: deploy works on eval mode, without switching ``model``).
        batch_size: the batch size it will mostly run at; ``memory_format="auto"`` uses it to pick
            NCHW (one image on CPU) or channels-last (batches, and always on GPU).
        memory_format: ``"auto"``, ``"probe"`` (time both on ``example_input``), ``"channels_last"``
            or ``"contiguous"``.
        example_input: a representative batch; when given, the returned model's outputs (after
            compiling, when ``compile`` is set) are checked against eval mode and a ValueError is
            raised beyond 1e-4 relative (``DEPLOY_TOLERANCES[dtype]`` in reduced precision).
        compile: a key of :data:`COMPILERS`: None (eager), ``"inductor"`` (``torch.compile`` with
            weight freezing, which packs and fuses the convs itself and compiles the rest) or
            ``"jit"`` (trace, freeze and ``torch.jit.optimize_for_inference``, which fuses conv +
            ReLU through oneDNN) or ``"aot"`` (AOTInductor at ``example_input``'s static shape: an
            :class:`AotModel` that ``save_package`` writes and ``load_package`` loads without
            compiling; other batch sizes are padded or split to it) or ``"openvino"`` (OpenVINO's
            CPU plugin at ``example_input``'s static shape, in float32 or ``dtype=torch.bfloat16``:
            an :class:`OpenVinoModel` that ``save_openvino`` writes as an IR; needs
            ``pip install 'splitattn[openvino]'``) or ``"onnxruntime"`` (onnxruntime's CPU
            provider on the network exported at ``example_input``'s static shape, float32: an
            :class:`OnnxRuntimeModel` that ``save_onnxruntime`` writes as one ``.onnx`` file; needs
            ``pip install 'splitattn[export]'``).
        fuse: ``"onednn"`` packs every conv's weight for oneDNN once and fuses the ReLUs and
            residual adds into the convs (CPU, float32 or bfloat16); ``"none"`` keeps standard
            ``nn.Conv2d`` modules, which exporters and compilers need; ``"auto"`` is ``"onednn"``
            when the model qualifies and ``compile`` is None, else ``"none"``. The packed
            weights are chosen for ``example_input``'s shape, or ``(batch_size, in_chans, 224, 224)``;
            other shapes still work, a little slower.
        dtype: the precision to compute in: None keeps the model's (float32); ``torch.bfloat16``
            is several times faster on CPUs with native bf16 (AVX-512 BF16, AMX) and on GPUs, and
            packs its convs for oneDNN where the CPU supports it. The deployed model still takes
            and returns float32; ``example_input`` checks it within ``DEPLOY_TOLERANCES[dtype]``.
        attention_mlp: ``"matmul"`` computes each attention's MLP (its 1 x 1 convs on the pooled
            1 x 1 map, BN folded) as matrix products on the pooled ``(N, C)`` vector
            (:class:`PooledLinear`); ``"conv"`` keeps the convs; ``"matmul-except-gates"`` keeps
            them only in gates (squeeze-excitation); ``"auto"`` (default) is the compile mode's
            form (``Compiler.attention_mlp``): ``"matmul"``, except under OpenVINO, which runs
            gates faster with their convs.
        inplace: convert ``model`` itself (it is switched to eval mode, folded and packed).

    Returns:
        The deployed model, with a :class:`Deployment` record (``deployment_of(result)``).
    """
    compiler = _validate(compile, fuse, batch_size, dtype, example_input, attention_mlp)
    _check_device(model, compiler)
    deployed = (model if inplace else copy.deepcopy(model)).eval()
    reference = _reference_outputs(deployed, example_input)
    matmuls = _strip_for_inference(deployed, attention_mlp, compiler)
    compute_dtype = _set_precision(deployed, dtype, compiler)
    fmt = _set_memory_format(deployed, memory_format, batch_size, example_input)
    fusions = _pack(deployed, fuse, compiler, example_input, batch_size, compute_dtype, fmt)
    result = _compile(deployed, compiler, example_input, fmt, compute_dtype)
    error = _check_outputs(result, example_input, reference, compute_dtype)
    return _record(result, Deployment(fmt, compute_dtype, compile, fusions, error, matmuls))

"""Deploy mode: an inference-only model that computes the same function as eval mode, faster.

``deploy(model)`` folds every BatchNorm into the conv before it (stem, blocks, shortcuts, the
bn0/bn1 inside split attention, the BNs of selective-kernel branches and their attention),
replaces DropBlock / DropPath / Dropout by identities, puts the weights in the memory format that
is faster for the expected batch size, and on CPU hands every conv to oneDNN with its weight
packed once and its ReLU (and the residual add at the end of a block) fused in. It can compile the
result instead. Outputs stay within 1e-4 relative of the eval-mode model; ``example_input`` makes
``deploy`` check that itself.

``dtype=torch.bfloat16`` (or float16) runs the same deployed network in reduced precision: the
BatchNorms are folded in float32 first, then the weights are cast; the attention's pooling and
softmax still accumulate in float32 (``layers.pooling``, ``layers.split_attn``). The model keeps
taking and returning float32 tensors (it casts at its input and output), so callers do not change;
its outputs are checked against float32 eval mode with ``DEPLOY_TOLERANCES[dtype]``.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from ..errors import OutputMismatchError, SplitattnError
from .fixed_batch import FixedBatch
from .fold import count_batchnorms, fold_batchnorms, fold_bn_into_conv
from .fuse import pack_and_fuse
from .inductor import FrozenInductorModel
from .memory_format import MEMORY_FORMATS, resolve_memory_format
from .packed_conv import PackedConv2d, onednn_unavailable_reason
from .strip import strip_training_modules

COMPILE_MODES = (None, "inductor", "jit")
FUSE_MODES = ("auto", "onednn", "none")
DEFAULT_IMG_SIZE = 224
DEPLOY_TOLERANCE = 1e-4
# Worst relative difference from float32 eval mode that deploy accepts, per computing dtype: bfloat16
# keeps 8 significant bits (2^-8 ~ 0.4% per rounding); through 50 layers the logits measured about
# 1% off (random and trained weights, resnest/seresnet/skresnet), so 3% leaves margin; float16 keeps
# 11 bits.
DEPLOY_TOLERANCES = {torch.float32: DEPLOY_TOLERANCE, torch.bfloat16: 3e-2, torch.float16: 5e-3}

__all__ = [
    "COMPILE_MODES",
    "DEPLOY_TOLERANCES",
    "FUSE_MODES",
    "MEMORY_FORMATS",
    "FixedBatch",
    "PackedConv2d",
    "count_batchnorms",
    "deploy",
    "fold_batchnorms",
    "fold_bn_into_conv",
    "pack_and_fuse",
    "relative_error",
    "strip_training_modules",
]


def relative_error(ours: torch.Tensor | list, reference: torch.Tensor | list) -> float:
    """Worst relative error over the output, or over each map of a backbone's list of maps."""
    if isinstance(reference, (list, tuple)):
        return max(relative_error(o, r) for o, r in zip(ours, reference, strict=True))
    return ((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


def _compile(model: nn.Module, mode: str | None, example: torch.Tensor | None) -> nn.Module:
    if mode is None:
        return model
    if mode == "inductor":
        return FrozenInductorModel(model)
    if example is None:
        raise SplitattnError("compile='jit' traces the model and needs an example input (example_input=...)")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices and the input-check TracerWarning
        traced = torch.jit.trace(model, example, check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


def _use_onednn(model: nn.Module, fuse: str, compile: str | None) -> bool:
    if fuse == "none":
        return False
    param = next(model.parameters())
    reason = onednn_unavailable_reason(param.device, param.dtype)
    if fuse == "onednn":
        if compile is not None:
            raise SplitattnError(
                f"fuse='onednn' is for eager mode: compilers cannot trace oneDNN's packed weights, and "
                f"compile={compile!r} packs and fuses by itself (use fuse='none' or 'auto')"
            )
        if reason is not None:
            raise SplitattnError(f"fuse='onednn' is not possible: {reason}")
        return True
    return compile is None and reason is None


def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    """``value`` (a tensor or a list / tuple of them, as backbones return) with floating tensors in ``dtype``."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floats(v, dtype) for v in value)
    return value


def _compute_in(model: nn.Module, dtype: torch.dtype) -> None:
    """Cast ``model`` to ``dtype`` and make it take and return float32, as callers already do."""
    model.to(dtype)

    def cast_input(_module: nn.Module, args: tuple) -> tuple:
        return tuple(_cast_floats(a, dtype) for a in args)

    def cast_output(_module: nn.Module, _args: tuple, output: Any) -> Any:
        return _cast_floats(output, torch.float32)

    model.register_forward_pre_hook(cast_input)
    model.register_forward_hook(cast_output)
    model.deploy_dtype = dtype  # type: ignore[assignment]


def _default_example(model: nn.Module, batch_size: int) -> torch.Tensor:
    in_chans = getattr(model, "in_chans", None)
    if in_chans is None:
        raise SplitattnError(
            f"{type(model).__name__} does not say how many input channels it takes (no in_chans); "
            "pass example_input=... so deploy can pack its convs for that shape"
        )
    param = next(model.parameters())
    return torch.zeros(batch_size, in_chans, DEFAULT_IMG_SIZE, DEFAULT_IMG_SIZE, device=param.device, dtype=param.dtype)


def _warn_if_bfloat16_is_emulated() -> None:
    """Say so when bfloat16 will be much slower than float32 instead of faster.

    Without native bf16 (AVX-512 BF16 or AMX) oneDNN has no bf16 kernels, so the convs fall back to
    PyTorch's reference implementation: resnest50 measured 9x (batch 16) to 45x (batch 1) slower
    than float32 deploy on an AVX2 EPYC. The numbers stay right, so this warns instead of refusing:
    the same script is several times faster on a server with AMX.
    """
    from .cpu_features import native_bfloat16

    if not native_bfloat16():
        warnings.warn("this CPU has no native bfloat16 (AVX-512 BF16 or AMX): bfloat16 is emulated and runs "
                      "several times slower than float32 here; deploy without dtype (float32) on this machine, "
                      "or use splitattn.quantize for int8", UserWarning, stacklevel=3)


def deploy(
    model: nn.Module,
    *,
    batch_size: int = 1,
    memory_format: str = "auto",
    example_input: torch.Tensor | None = None,
    compile: str | None = None,
    fuse: str = "auto",
    dtype: torch.dtype | None = None,
    inplace: bool = False,
) -> nn.Module:
    """Return ``model`` in deploy mode (a copy unless ``inplace``).

    Args:
        batch_size: the batch size it will mostly run at; ``memory_format="auto"`` uses it to pick
            NCHW (one image on CPU) or channels-last (batches, and always on GPU).
        memory_format: ``"auto"``, ``"probe"`` (time both on ``example_input``), ``"channels_last"``
            or ``"contiguous"``.
        example_input: a representative batch; when given, the deployed outputs are checked
            against eval mode and a ValueError is raised beyond 1e-4 relative.
        compile: None (eager), ``"inductor"`` (``torch.compile`` with weight freezing, which packs
            and fuses the convs itself and compiles the rest) or ``"jit"`` (trace, freeze and
            ``torch.jit.optimize_for_inference``, which fuses conv + ReLU through oneDNN).
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
    """
    if compile not in COMPILE_MODES:
        raise SplitattnError(f"compile must be one of {COMPILE_MODES}, got {compile!r}")
    if fuse not in FUSE_MODES:
        raise SplitattnError(f"fuse must be one of {FUSE_MODES}, got {fuse!r}")
    if batch_size < 1:
        raise SplitattnError(f"batch_size must be >= 1, got {batch_size}")
    if dtype is not None and dtype not in DEPLOY_TOLERANCES:
        raise SplitattnError(f"dtype must be one of {[str(d) for d in DEPLOY_TOLERANCES]} (or None), got {dtype}")
    reference = None
    if example_input is not None:
        with torch.no_grad():
            reference = model.eval()(example_input)
    deployed = model if inplace else copy.deepcopy(model)
    deployed.eval()
    fold_batchnorms(deployed)
    strip_training_modules(deployed)
    for param in deployed.parameters():
        param.requires_grad_(False)
    compute_dtype = next(deployed.parameters()).dtype  # before packing, which turns weights into buffers
    if dtype == torch.bfloat16 and next(deployed.parameters()).device.type == "cpu":
        _warn_if_bfloat16_is_emulated()
    if dtype is not None and dtype != compute_dtype:
        _compute_in(deployed, dtype)  # after folding, which is exact only in float32
        compute_dtype = dtype
    fmt = resolve_memory_format(deployed, memory_format, batch_size, example_input)
    deployed.to(memory_format=fmt)
    deployed.deploy_memory_format = fmt  # type: ignore[assignment]
    if _use_onednn(deployed, fuse, compile):
        example = example_input if example_input is not None else _default_example(deployed, batch_size)
        example = _cast_floats(example, compute_dtype).contiguous(memory_format=fmt)
        deployed.deploy_fusions = pack_and_fuse(deployed, example)  # type: ignore[assignment]
    if reference is not None:
        with torch.no_grad():
            error = relative_error(deployed(example_input), reference)
        tolerance = DEPLOY_TOLERANCES.get(compute_dtype, DEPLOY_TOLERANCE)
        if error > tolerance:
            raise OutputMismatchError(f"deployed model differs from eval mode by {error:.2e} relative "
                             f"(> {tolerance} for {compute_dtype})")
    example = None if example_input is None else example_input.contiguous(memory_format=fmt)
    return _compile(deployed, compile, example)

"""The precision a deployed model computes in, and how far from float32 eval mode it may be.

Folding BatchNorms is exact only in float32, so ``deploy`` folds first and casts afterwards; the
cast model takes and returns float32 (it casts at its input and output), so callers do not change.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

DEPLOY_TOLERANCE = 1e-4
# Worst relative difference from float32 eval mode that deploy accepts, per computing dtype: bfloat16
# keeps 8 significant bits (2^-8 ~ 0.4% per rounding); through 50 layers the logits measured about
# 1% off (random and trained weights, resnest/seresnet/skresnet), so 3% leaves margin; float16 keeps
# 11 bits.
DEPLOY_TOLERANCES = {torch.float32: DEPLOY_TOLERANCE, torch.bfloat16: 3e-2, torch.float16: 5e-3}
# What records and saved files call each dtype a model computes in (the export precisions' names).
PRECISION_OF_DTYPE = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def cast_floats(value: Any, dtype: torch.dtype) -> Any:
    """``value`` (a tensor or a list / tuple of them, as backbones return) with floating tensors in ``dtype``."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(cast_floats(v, dtype) for v in value)
    return value


def compute_in(model: nn.Module, dtype: torch.dtype) -> None:
    """Cast ``model`` to ``dtype`` in place and make it take and return float32, as callers already do.

    Args:
        model: the folded model (folding must come first: it is exact only in float32).
        dtype: a key of :data:`DEPLOY_TOLERANCES`.
    """
    model.to(dtype)

    def cast_input(_module: nn.Module, args: tuple) -> tuple:
        return tuple(cast_floats(a, dtype) for a in args)

    def cast_output(_module: nn.Module, _args: tuple, output: Any) -> Any:
        return cast_floats(output, torch.float32)

    model.register_forward_pre_hook(cast_input)
    model.register_forward_hook(cast_output)


def warn_if_bfloat16_is_emulated() -> None:
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
                      "or use splitattn.quantize for int8", UserWarning, stacklevel=4)

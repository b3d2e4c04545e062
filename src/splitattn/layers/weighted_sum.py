"""The attention-weighted sum of splits that ends split attention and selective kernels.

``out[b, c] = sum_r weights[b, r, c] * splits[b, r, c]`` looks like one broadcast multiply and a
sum over ``r``, and that is how both reference implementations write it. On CPU that form first
materialises the whole ``(B, radix, C, H, W)`` product and then reduces across a strided axis,
which is 2-8x slower than accumulating one fused multiply-add per split, and slower still on
channels-last tensors. Autograd through the fused form is no better: it rebuilds the full product
to reduce each weight's gradient. So the training path gets its own backward, which writes the
splits' gradient in one broadcast multiply in the splits' own memory layout and reduces each
weight gradient as a per-split dot product over H x W. The radix is 2 in every published model,
so each loop below runs once or twice.
"""

from __future__ import annotations

import torch

from ..errors import SplitattnError


def _accumulate(splits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    out = splits[:, 0] * weights[:, 0]
    for index in range(1, splits.shape[1]):
        out = out.addcmul_(splits[:, index], weights[:, index])
    return out


class _SplitWeightedSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, splits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(splits, weights)
        return _accumulate(splits, weights)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        splits, weights = ctx.saved_tensors
        grad_splits = grad_weights = None
        if ctx.needs_input_grad[0]:
            # empty_like keeps the splits' strides, so a channels-last input gets a channels-last gradient
            grad_splits = torch.empty_like(splits, dtype=torch.result_type(grad, weights))
            torch.mul(grad.unsqueeze(1), weights, out=grad_splits)
            grad_splits = grad_splits.to(splits.dtype)
        if ctx.needs_input_grad[1]:
            per_split = [(grad * splits[:, r]).sum((2, 3), keepdim=True) for r in range(splits.shape[1])]
            grad_weights = torch.stack(per_split, 1).to(weights.dtype)
        return grad_splits, grad_weights


def split_weighted_sum(splits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(splits * weights).sum(1)`` for ``splits (B, R, C, H, W)`` and ``weights (B, R, C, 1, 1)``, faster."""
    if splits.ndim != 5 or weights.shape != (*splits.shape[:3], 1, 1):
        raise SplitattnError(
            f"expected splits (B, R, C, H, W) and weights (B, R, C, 1, 1), got {tuple(splits.shape)} "
            f"and {tuple(weights.shape)}"
        )
    if torch.is_grad_enabled() and (splits.requires_grad or weights.requires_grad) and not _tracing():
        return _SplitWeightedSum.apply(splits, weights)
    return _accumulate(splits, weights)


def _tracing() -> bool:
    """Exporters record plain tensor ops; they cannot record a Python autograd Function."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()

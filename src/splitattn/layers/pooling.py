"""Pooling: the global average pool of the attention layers, and variants published weights need."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def spatial_mean(x: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Mean over the last two (spatial) dimensions.

    The same value as ``x.mean((-2, -1))``, but the backward differs: the gradient of a sum is a
    broadcast view of the small pooled gradient, while ``mean``'s backward writes a full-size
    tensor (the broadcast divided by H x W). Every attention layer pools its whole feature map, so
    that is one full write fewer per layer and training step.

    The sum is accumulated in at least float32 (:func:`accumulation_dtype`): a bfloat16 running sum
    keeps 8 significant bits, and after a few hundred positions each new one barely moves it, while
    a float64 model keeps its float64 sum. The pooled vector is small, so the cast back costs
    nothing; for float32 and float64 input both casts are no-ops.
    """
    pooled = x.sum((-2, -1), keepdim=keepdim, dtype=accumulation_dtype(x)) / (x.shape[-2] * x.shape[-1])
    return pooled.to(x.dtype)


def accumulation_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the attention layers pool and normalise ``x`` in: float32 or wider.

    Reduced precision (bfloat16, float16) is raised to float32, where sums and softmax
    normalisers stay accurate; float32 and float64 are kept, so a float64 model computes in
    float64 throughout and matches float64 references to rounding (about 1e-15), not to float32's
    1e-8. A function of the input, not a constant, so traces (fx, TorchScript, ONNX) record the
    input's own dtype.

    Args:
        x: the tensor about to be reduced.
    """
    return torch.promote_types(x.dtype, torch.float32)


class ZeroPadAvgPool2d(nn.Module):
    """2 x 2 stride-1 mean over the input with one zero row and column appended (bottom, right).

    This is what timm's average-pool shortcut does in dilated stages ("SAME" padding of a 2 x 2
    window). It keeps the spatial size but blurs the shortcut, and dims the last row and column;
    the models that mimic timm keep it so their dilated outputs match timm's exactly.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), kernel_size=2, stride=1)

"""DropBlock (Ghiasi et al., 2018): structured dropout of contiguous regions of a feature map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SplitattnError


class DropBlock2d(nn.Module):
    """Zero out ``block_size x block_size`` squares, then rescale to keep the expected activation.

    Plain dropout barely regularises conv features because neighbouring activations carry the same
    information; dropping whole blocks forces the network to look elsewhere. The ResNeSt recipe
    ramps the rate linearly from 0 to its target over training: ``drop_prob`` is the current rate
    and ``target_prob`` the rate at the end of the ramp (see :func:`set_drop_block_progress`).
    """

    def __init__(self, drop_prob: float = 0.1, block_size: int = 3) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise SplitattnError(f"DropBlock drop_prob must be in [0, 1), got {drop_prob}")
        if block_size < 1:
            raise SplitattnError(f"DropBlock block_size must be >= 1, got {block_size}")
        self.target_prob = drop_prob
        self.drop_prob = drop_prob
        self.block_size = block_size

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, target_prob={self.target_prob}, block_size={self.block_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        height, width = x.shape[-2:]
        block = min(self.block_size, height, width)
        # Seed rate chosen so that the expected dropped fraction equals drop_prob once each seed
        # grows into a block; seeds are only placed where a whole block fits.
        valid = (height - block + 1) * (width - block + 1)
        gamma = self.drop_prob * height * width / (block * block * valid)
        seeds = torch.zeros_like(x)
        pad_top, pad_left = block // 2, block // 2
        seeds[..., pad_top : pad_top + height - block + 1, pad_left : pad_left + width - block + 1] = (
            torch.rand(
                (*x.shape[:-2], height - block + 1, width - block + 1), device=x.device, dtype=x.dtype
            )
            < gamma
        ).to(x.dtype)
        dropped = F.max_pool2d(seeds, block, stride=1, padding=block // 2)
        if block % 2 == 0:
            dropped = dropped[..., :height, :width]
        keep = 1.0 - dropped
        scale = keep.numel() / keep.sum().clamp(min=1.0)
        return x * keep * scale


def set_drop_block_progress(model: nn.Module, progress: float) -> float:
    """Set every DropBlock in ``model`` to ``progress`` (0..1) of its target rate; returns the fraction.

    Called once per epoch (or step) by the trainer to follow the ResNeSt recipe's linear ramp.
    """
    progress = min(max(float(progress), 0.0), 1.0)
    for module in model.modules():
        if isinstance(module, DropBlock2d):
            module.drop_prob = module.target_prob * progress
    return progress

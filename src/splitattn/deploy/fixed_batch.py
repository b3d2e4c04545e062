"""Run a compiled model on one batch size, so that the last, smaller batch of a pass does not compile.

A model compiled by inductor is compiled again for each new input shape, which for our int8 models
takes 10-20 s on two cores. An evaluation over a folder has one batch size except for its last
batch (and any batch that lost unreadable images), so it would compile twice. Padding such a batch
with zeros to the size already compiled costs one batch of arithmetic instead. The padding cannot
change the real images' outputs: in inference every image is computed on its own (batch norms are
folded, int8 ranges are fixed by calibration). A package compiled ahead of time runs one shape
only, so a larger batch is split into compiled-size pieces too (``split=True``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SplitattnError


class FixedBatch(nn.Module):
    """``model`` called with batches of exactly ``batch_size`` images: a smaller batch is padded
    with zeros and its outputs cut back; a larger one is passed as it is, or with ``split`` run
    in pieces of ``batch_size`` (the last one padded) and the outputs concatenated."""

    def __init__(self, model: nn.Module, batch_size: int, split: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise SplitattnError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.split = split

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        short = self.batch_size - x.shape[0]
        if short <= 0:
            return self.model(x)
        padding = x.new_zeros((short, *x.shape[1:]))
        return self.model(torch.cat([x, padding]))[: x.shape[0]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.split or x.shape[0] <= self.batch_size:
            return self._padded(x)
        return torch.cat([self._padded(piece) for piece in x.split(self.batch_size)])

"""Small arithmetic shared by the attention layers."""

from __future__ import annotations

from ..errors import SplitattnError


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round a channel count to a multiple of ``divisor``.

    Attention bottlenecks are sized as a fraction of the channels they attend over; rounding them to
    a hardware-friendly multiple is what the published SE and SK models did, so their parameter
    counts (and pretrained weights) depend on this exact rule. ``round_limit`` bumps the result up
    one step when plain rounding would lose more than ``1 - round_limit`` of the requested width.
    """
    if divisor <= 0:
        raise SplitattnError(f"divisor must be a positive integer, got {divisor}")
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded

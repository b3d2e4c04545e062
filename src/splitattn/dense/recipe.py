"""The settings every detection and segmentation run shares: backbone, optimisation, runtime.

Both task configs extend this one, so a field means the same thing (and has one help text in the
CLI) whichever task reads it. The fields are keyword-only: each task puts its data arguments
first, and the task configs override a default or two (batch size, learning rate) without
changing argument order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(kw_only=True)
class DenseRecipe:
    """Backbone, optimiser and runtime settings; saved in each checkpoint with the task's own."""

    backbone: str = "resnest50"
    pretrained_backbone: str | None = None  # "published", or a path / URL
    steps: int = 1000
    batch_size: int = 4
    optimizer: str = "sgd"
    lr: float = 0.02
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    device: str = "auto"
    amp: bool = False
    seed: int = 0
    workers: int = 2
    output: str | None = None
    log_every: int = 20

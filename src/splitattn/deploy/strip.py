"""Remove modules that only act during training.

DropBlock, DropPath (stochastic depth) and Dropout are already identities in eval mode, but each
still costs a Python call and a branch per forward; a deployed model has no use for them.
"""

from __future__ import annotations

from torch import nn

from ..layers import DropBlock2d, DropPath

TRAINING_ONLY: tuple[type[nn.Module], ...] = (DropBlock2d, DropPath, nn.Dropout, nn.Dropout2d)


def strip_training_modules(model: nn.Module) -> int:
    """Replace every training-only module in ``model`` by ``nn.Identity``, in place; returns the count."""
    stripped = 0
    for parent in list(model.modules()):
        # _modules, not named_children(): named_children() yields a module held in two slots once.
        for name, child in list(parent._modules.items()):
            if isinstance(child, TRAINING_ONLY):
                setattr(parent, name, nn.Identity())
                stripped += 1
    return stripped

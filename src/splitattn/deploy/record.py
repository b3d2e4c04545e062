"""What ``deploy`` made of a model, kept on the model it returns as one typed record.

Callers (the benchmark, the prediction loop, tests) need to know which memory layout the weights
were put in, what the model computes in and what got fused; reading that from one record with
named fields beats guessing from module types, and a ``Deployment`` cannot be half set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import SplitattnError

RECORD_ATTRIBUTE = "deployment"


@dataclass(frozen=True)
class Deployment:
    """How a deployed model was made.

    Args:
        memory_format: the layout its weights (and the inputs it is fastest with) are in.
        dtype: the precision it computes in; it still takes and returns float32 when that differs.
        compile: the compile mode (``None``: eager).
        fusions: what packing for oneDNN fused, by kind (``relu_fused``, ``residual_fused``);
            empty when the convs were left standard.
        checked_error: the worst relative error against eval mode on ``example_input``, measured
            on the returned model itself; ``None`` when no example was given.
        attention_matmuls: attention MLP layers computed as matrix products (as ``attention_mlp`` chose).
    """

    memory_format: torch.memory_format
    dtype: torch.dtype
    compile: str | None = None
    fusions: Mapping[str, int] = field(default_factory=dict)
    checked_error: float | None = None
    attention_matmuls: int = 0


def deployment_of(model: nn.Module) -> Deployment:
    """The :class:`Deployment` record ``deploy`` left on ``model``.

    Args:
        model: a model returned by :func:`splitattn.deploy`.

    Raises:
        ValueError: ``model`` did not come from ``deploy``.
    """
    record = getattr(model, RECORD_ATTRIBUTE, None)
    if not isinstance(record, Deployment):
        raise SplitattnError(f"{type(model).__name__} was not made by splitattn.deploy (it has no Deployment record); "
                             "pass the model deploy() returned")
    return record

"""What an inference-only model that no longer has its ``nn.Module`` tree (an int8 graph, an AOT
package) still tells its users: classes, input channels and settings, from the record it was saved with.

Eval, predict and the model card read ``num_classes``, ``in_chans`` and ``pretrained_cfg`` from any
model; these models keep them in ``info`` (the JSON saved beside their graph or library) instead of
in attributes of a module tree they no longer have. They cannot train: ``train()`` says what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import SplitattnError
from .fixed_batch import FixedBatch


class FrozenModel(nn.Module):
    """Base of the models that only run inference and describe themselves from ``info``.

    Args:
        info: the saved record (``num_classes``, ``in_chans``, ``pretrained_cfg`` ...).
        what: how the refusal to train names the model ("a quantized model").
        remake: what to do again after training the float model ("quantize it", "compile it").
    """

    def __init__(self, info: dict[str, Any], what: str, remake: str) -> None:
        super().__init__()
        self.info = dict(info)
        self._what, self._remake = what, remake

    @property
    def num_classes(self) -> int:
        return int(self.info.get("num_classes", 0))

    @property
    def in_chans(self) -> int:
        return int(self.info.get("in_chans", 3))

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        return dict(self.info.get("pretrained_cfg", {}))

    def train(self, mode: bool = True) -> FrozenModel:
        """Always in inference mode: ``eval()`` is a no-op, ``train()`` is refused."""
        if mode:
            raise SplitattnError(f"{self._what} is for inference and cannot train; train the float model, "
                                 f"then {self._remake} again")
        return self


class StaticShapeModel(FrozenModel):
    """A frozen model compiled for one input shape, ``info["input_shape"]`` (an AOT package, an
    OpenVINO model): it takes float32 images of that size only, and any batch size, padded or split
    to the compiled one (:class:`FixedBatch`).

    Args:
        info: the saved record, with ``input_shape`` ``[N, C, H, W]``.
        what: how messages name the model ("a compiled package").
        remake: what to do again for another image size or after training ("compile it").
        run: the compiled computation on one batch of exactly ``N`` images.
    """

    def __init__(self, info: dict[str, Any], what: str, remake: str,
                 run: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__(info, what, remake)
        self.fixed = FixedBatch(_Call(run), self.batch_size, split=True)

    @property
    def batch_size(self) -> int:
        return int(self.info["input_shape"][0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = tuple(self.info["input_shape"][1:])
        if x.dtype != torch.float32 or tuple(x.shape[1:]) != expected:
            raise SplitattnError(f"{self._what[0].upper()}{self._what[1:]} was compiled for float32 images of shape "
                                 f"{expected}, got {x.dtype} {tuple(x.shape[1:])}; {self._remake} again at that size")
        return self.fixed(x.contiguous())


class _Call(nn.Module):
    """A compiled computation (a C++ runner, an inference request) as a module, for :class:`FixedBatch`."""

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        object.__setattr__(self, "_run", run)  # not a module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)

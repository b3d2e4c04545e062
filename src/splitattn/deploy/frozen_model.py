"""What an inference-only model that no longer has its ``nn.Module`` tree (an int8 graph, an AOT
package) still tells its users: classes, input channels and settings, from the record it was saved with.

Eval, predict and the model card read ``num_classes``, ``in_chans`` and ``pretrained_cfg`` from any
model; these models keep them in ``info`` (the JSON saved beside their graph or library) instead of
in attributes of a module tree they no longer have. They cannot train: ``train()`` says what to do.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import SplitattnError


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

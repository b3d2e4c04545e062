"""Convolutions with weights pre-packed for oneDNN and the activation fused in.

Eager PyTorch on CPU hands every convolution to oneDNN, which first reorders the weight into its
blocked layout, on every call. For one image that reorder costs about as much as the arithmetic in
the deep stages, where weights outnumber activations. ``PackedConv2d`` does the reorder once, when
the model is deployed, and asks oneDNN to apply the ReLU (or the residual add and ReLU) in the
same pass over the output, saving one read and write of every activation it touches. These are
the same oneDNN kernels ``torch.compile`` emits for CPU convolutions after freezing, called here
from eager mode.

The packed weight is chosen for one input shape (the one seen when deploying). Other shapes still
compute the right answer: oneDNN reorders again for them, at the cost the packing was meant to
save.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import SplitattnError

ACTIVATIONS = ("none", "relu")
PACKABLE_DTYPES = (torch.float32, torch.bfloat16)


def onednn_unavailable_reason(device: torch.device, dtype: torch.dtype) -> str | None:
    """Why a model on ``device`` in ``dtype`` cannot use packed convs, or None if it can."""
    if device.type != "cpu":
        return f"oneDNN packing is for CPU models; this one is on {device.type}"
    if dtype not in PACKABLE_DTYPES:
        return f"oneDNN packing supports {[str(d) for d in PACKABLE_DTYPES]}, not {dtype}"
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN (torch.backends.mkldnn.is_available() is False)"
    if not hasattr(torch.ops.mkldnn, "_convolution_pointwise"):
        return "this PyTorch build lacks torch.ops.mkldnn._convolution_pointwise"
    if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        # oneDNN packs bfloat16 weights only for CPUs with native bf16 arithmetic (AVX-512 BW/VL/DQ,
        # AVX-NE-CONVERT or AMX); elsewhere bf16 convs run as standard, unpacked kernels.
        return "this CPU has no native bfloat16 support in oneDNN (it needs AVX-512 or AVX-NE-CONVERT)"
    return None


class PackedConv2d(nn.Module):
    """An inference-only copy of an ``nn.Conv2d`` with its weight in oneDNN's layout.

    ``activation="relu"`` computes ``relu(conv(x))`` in one kernel; :meth:`add_relu` computes
    ``relu(conv(x) + residual)``, the end of a residual block. oneDNN's packed tensors are opaque:
    they cannot be saved, so ``state_dict()`` raises instead of quietly leaving the convs out (save
    the original model and deploy after loading), and the module cannot change device or dtype
    (deploy again for that).
    """

    def __init__(self, conv: nn.Conv2d, input_size: Sequence[int], activation: str = "none") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise SplitattnError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise SplitattnError(
                f"PackedConv2d needs explicit zero padding, got padding={conv.padding!r}, "
                f"padding_mode={conv.padding_mode!r}"
            )
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size = conv.kernel_size
        self.padding = list(conv.padding)
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.activation = activation
        with torch.no_grad():
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                conv.weight.detach(), self.padding, self.stride, self.dilation, self.groups, list(input_size)
            )
        self.register_buffer("weight", packed, persistent=False)
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone(), persistent=False)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> PackedConv2d:
        # Module.to/.half/.cuda land here. A packed weight has no strides to change, so only a move
        # to another device or dtype matters, and that is not possible: say so instead of failing
        # deep inside oneDNN.
        probe = torch.zeros(1, 1, 1, 1, dtype=self.weight.dtype)
        moved = fn(probe)
        if (moved.device, moved.dtype) != (probe.device, probe.dtype):
            raise SplitattnError(
                f"this deployed model holds oneDNN-packed {self.weight.dtype} CPU convolutions and cannot move to "
                f"{moved.device.type} {moved.dtype}; move the original model, then call splitattn.deploy on it"
            )
        return self

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        raise RuntimeError(
            f"{prefix.rstrip('.') or 'this conv'} holds a oneDNN-packed weight, which cannot be saved: save the "
            "model before splitattn.deploy (and deploy after loading it), or deploy with fuse='none'"
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> PackedConv2d:
        # The default deepcopy reads tensor storage, which oneDNN's opaque tensors do not expose.
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        memo[id(self.weight)] = self.weight.clone()
        for key, value in self.__dict__.items():
            clone.__dict__[key] = copy.deepcopy(value, memo)
        return clone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
            self.activation, [], "",
        )  # fmt: skip

    def add_relu(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``relu(conv(x) + residual)`` in one pass over the output; needs ``activation="none"``."""
        if self.activation != "none":
            raise SplitattnError("add_relu applies its own ReLU after the add; this conv already fuses one")
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, residual, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
            "add", 1.0, "relu", [], "",
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={tuple(self.stride)}, "
            f"padding={tuple(self.padding)}, dilation={tuple(self.dilation)}, groups={self.groups}, "
            f"bias={self.bias is not None}, activation={self.activation!r}"
        )

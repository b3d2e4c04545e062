"""Swap a folded model's convs for oneDNN-packed ones and fuse the ReLUs and residual adds after them.

Runs after BatchNorm folding and after training-only modules are stripped, so between a conv and
its ReLU there are only identities left. Which ReLU follows which conv is stated per audited
module type below, never guessed from registration order: a block's last ReLU comes after the
residual add, and fusing it into the conv before the add would change the function. Residual
blocks whose branch ends in a plain conv (no SE gate, no stochastic depth) take the add and the
final ReLU into that conv too, through a subclass whose forward calls ``add_relu``; SE bottlenecks
apply their gate and the add in one ``addcmul``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers.selective_kernel import SelectiveKernelAttn
from ..layers.split_attn import SplitAttnConv2d
from ..models.blocks import BasicBlock, Bottleneck
from ..models.resnet import ResNet
from .fold import output_conv
from .packed_conv import PackedConv2d

# (conv, the modules between it and its ReLU, which must be identities by now, the ReLU)
RELU_AFTER_CONV: dict[type[nn.Module], tuple[tuple[str, tuple[str, ...], str], ...]] = {
    ResNet: (("conv1", ("bn1",), "act1"),),
    BasicBlock: (("conv1", ("bn1", "drop_block1"), "act1"),),
    Bottleneck: (("conv1", ("bn1", "drop_block1"), "act1"), ("conv2", ("bn2", "drop_block2"), "act2")),
    SplitAttnConv2d: (("conv", ("bn0", "drop_block"), "act0"), ("fc1", ("bn1",), "act1")),
    SelectiveKernelAttn: (("fc_reduce", ("bn",), "act"),),
}


class FusedBottleneck(Bottleneck):
    """A deployed Bottleneck whose last conv also adds the shortcut and applies the final ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.conv3.add_relu(self.conv3_input(x), shortcut)


class FusedSEBottleneck(Bottleneck):
    """A deployed SE Bottleneck: gate, shortcut add and ReLU in two passes (addcmul, in-place ReLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv3_input(x))
        return torch.addcmul(shortcut, out, self.se.attention(out)).relu_()


class FusedBasicBlock(BasicBlock):
    """A deployed BasicBlock whose last conv also adds the shortcut and applies the final ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.conv2.add_relu(self.conv2_input(x), shortcut)


def _is_identity(parent: nn.Module, names: Sequence[str]) -> bool:
    return all(isinstance(getattr(parent, name, None), nn.Identity) for name in names)


def _conv_slot(parent: nn.Module, name: str) -> tuple[nn.Module, str] | None:
    """Where the conv producing ``parent.name``'s output lives, if that output comes from a conv."""
    child = getattr(parent, name, None)
    if isinstance(child, nn.Conv2d):
        return parent, name
    return output_conv(child) if isinstance(child, nn.Module) else None


def _relu_fusions(model: nn.Module) -> dict[int, tuple[nn.Module, str]]:
    """Plan which conv takes which ReLU: ``{id(conv): (owner of the ReLU, its name)}``."""
    plan: dict[int, tuple[nn.Module, str]] = {}
    for parent in model.modules():
        if type(parent).forward is nn.Sequential.forward:  # children run in order: adjacency is execution order
            items = list(parent._modules.items())
            for i, (_, child) in enumerate(items):
                if not isinstance(child, nn.Conv2d):
                    continue
                j = i + 1
                while j < len(items) and isinstance(items[j][1], nn.Identity):
                    j += 1
                if j < len(items) and isinstance(items[j][1], nn.ReLU):
                    plan[id(child)] = (parent, items[j][0])
        for conv_name, between, relu_name in RELU_AFTER_CONV.get(type(parent), ()):
            slot = _conv_slot(parent, conv_name)
            relu = getattr(parent, relu_name, None)
            if slot is None or not _is_identity(parent, between) or not isinstance(relu, nn.ReLU):
                continue
            plan[id(getattr(*slot))] = (parent, relu_name)
    return plan


def _record_input_sizes(model: nn.Module, example: torch.Tensor) -> dict[int, list[int]]:
    sizes: dict[int, list[int]] = {}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        sizes.setdefault(id(module), list(args[0].shape))

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def _fused_class(block: nn.Module) -> type[nn.Module] | None:
    """The fused subclass for a block whose branch ends in a packed conv (then maybe SE), or None."""
    if type(block) is Bottleneck:
        last, between = block.conv3, ("bn3", "drop_block3", "drop_path")
        fused = FusedBottleneck if block.se is None else FusedSEBottleneck
    elif type(block) is BasicBlock and block.se is None:
        last, between = block.conv2, ("bn2", "drop_block2", "drop_path")
        fused = FusedBasicBlock
    else:
        return None
    plain_end = _is_identity(block, between) and isinstance(last, PackedConv2d) and last.activation == "none"
    return fused if plain_end else None


def pack_and_fuse(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Replace, in place, every conv ``example`` reaches by a :class:`PackedConv2d`; returns counts.

    ``model`` must already be folded and stripped (see :func:`splitattn.deploy.deploy`). Convs the
    example never reaches (a classifier-free backbone's unused parts, say) stay as they are.
    """
    sizes = _record_input_sizes(model, example)
    relus = _relu_fusions(model)
    counts = {"packed": 0, "relu_fused": 0, "residual_fused": 0}
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if not isinstance(child, nn.Conv2d) or id(child) not in sizes:
                continue
            fused = relus.get(id(child))
            setattr(parent, name, PackedConv2d(child, sizes[id(child)], "relu" if fused else "none"))
            counts["packed"] += 1
            if fused:
                setattr(fused[0], fused[1], nn.Identity())
                counts["relu_fused"] += 1
    for block in model.modules():
        if (fused_class := _fused_class(block)) is not None:
            block.__class__ = fused_class
            counts["residual_fused"] += 1
    return counts

"""Swap a folded model's convs for oneDNN-packed ones and fuse the ReLUs and residual adds after them.

Runs after BatchNorm folding and after training-only modules are stripped, so between a conv and
its ReLU there are only identities left. Which ReLU follows which conv is what each module class
declares (``deploy_chains``: blocks, the stem, every attention layer), or the order of a plain
Sequential; never guessed from registration order: a block's last ReLU comes after the residual
add, and fusing it into the conv before the add would change the function. Residual blocks whose
branch ends in a plain conv take the add and the final ReLU into that conv too, through a subclass
whose forward calls ``add_relu``; gated blocks (SE, any :class:`~splitattn.layers.Gate`) apply
gate and add in one ``addcmul``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers import Gate
from .fold import conv_slot, runs_in_order
from .packed_conv import PackedConv2d


def _fused_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A residual block whose last conv also adds the shortcut and applies the final ReLU."""
    return getattr(self, self.residual_conv).add_relu(self.last_conv_input(x), self.downsample(x))


def _fused_gated_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A gated residual block: gate, shortcut add and ReLU in two passes (addcmul, in-place ReLU)."""
    shortcut = self.downsample(x)
    gate = self.se
    out = gate.input_act(getattr(self, self.residual_conv)(self.last_conv_input(x)))
    return torch.addcmul(shortcut, out, gate.attention(out)).relu_()


_FUSED_CLASSES: dict[tuple[type, bool], type] = {}


def _fused_subclass(block_class: type, gated: bool) -> type:
    """``Fused<Block>`` or ``FusedGated<Block>``: the block class with one of the forwards above."""
    key = (block_class, gated)
    if key not in _FUSED_CLASSES:
        name = f"Fused{'Gated' if gated else ''}{block_class.__name__}"
        forward = _fused_gated_forward if gated else _fused_forward
        _FUSED_CLASSES[key] = type(name, (block_class,), {"forward": forward, "__module__": __name__})
    return _FUSED_CLASSES[key]


def _is_identity(parent: nn.Module, names: Sequence[str]) -> bool:
    return all(isinstance(getattr(parent, name, None), nn.Identity) for name in names)


def _relu_fusions(model: nn.Module) -> dict[int, tuple[nn.Module, str]]:
    """Plan which conv takes which ReLU: ``{id(conv): (owner of the ReLU, its name)}``.

    The ReLU must directly follow the conv: in a Sequential, with only identities between them;
    in a declared chain (``deploy_chains``), with its norm folded and its regularisers stripped.
    """
    plan: dict[int, tuple[nn.Module, str]] = {}
    for parent in model.modules():
        if runs_in_order(parent):
            items = list(parent._modules.items())
            for i, (_, child) in enumerate(items):
                if not isinstance(child, nn.Conv2d):
                    continue
                j = i + 1
                while j < len(items) and isinstance(items[j][1], nn.Identity):
                    j += 1
                if j < len(items) and isinstance(items[j][1], nn.ReLU):
                    plan[id(child)] = (parent, items[j][0])
        for chain in getattr(type(parent), "deploy_chains", ()):
            slot = conv_slot(parent, chain.conv)
            relu = getattr(parent, chain.act, None) if chain.act else None
            if slot is None or not _is_identity(parent, (chain.norm, *chain.between)) or not isinstance(relu, nn.ReLU):
                continue
            plan[id(getattr(*slot))] = (parent, chain.act)
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
    """The fused subclass for a residual block whose branch ends in a packed conv (then maybe a gate), or None.

    Blocks say which conv ends their branch (``residual_conv``), what lies between it and the add
    (``residual_between``, identities once folded and stripped) and which activation follows the
    add (``residual_act``); their gate is ``se``.
    """
    cls = type(block)
    conv_name = getattr(cls, "residual_conv", None)
    if conv_name is None or cls in _FUSED_CLASSES.values():
        return None
    last, gate = getattr(block, conv_name, None), getattr(block, "se", None)
    final_relu = isinstance(getattr(block, cls.residual_act, None), nn.ReLU)
    plain_end = isinstance(last, PackedConv2d) and last.activation == "none" and final_relu
    if not plain_end or not _is_identity(block, (*cls.residual_between, "drop_path")):
        return None
    if isinstance(gate, nn.Identity):
        return _fused_subclass(cls, gated=False)
    return _fused_subclass(cls, gated=True) if isinstance(gate, Gate) else None


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

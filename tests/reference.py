"""The reference implementations (test-only) and how to compare our models against them."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from splitattn import convert_state_dict, create_model, get_model_entry

timm = pytest.importorskip("timm", reason="the parity tests need timm (pip install -e .[test])")
resnest_torch = pytest.importorskip("resnest.torch", reason="the parity tests need resnest==0.0.5")


def reference_model(name: str, num_classes: int = 1000, in_chans: int = 3, output_stride: int = 32) -> nn.Module:
    """The reference package's model for a zoo name, in its own layout."""
    entry = get_model_entry(name)
    if entry.reference == "official":
        dilation = {32: {}, 16: {"dilation": 2}, 8: {"dilated": True}}[output_stride]
        model = getattr(resnest_torch, name)(num_classes=num_classes, **dilation)
        if in_chans != 3:
            # The official package has no in_chans argument: swap its first conv for one that has.
            old = model.conv1[0]
            model.conv1[0] = nn.Conv2d(in_chans, old.out_channels, 3, 2, 1, bias=False)
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extra = {"output_stride": output_stride} if output_stride != 32 else {}
        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **extra)


def _last_bn_of_each_block(model: nn.Module) -> set[nn.Module]:
    """The BN that ends each residual branch (bn3 in a bottleneck, bn2 in a basic block)."""
    last = set()
    for name, block in model.named_modules():
        if re.fullmatch(r"layer\d+\.\d+", name):
            for candidate in ("bn3", "conv3.bn", "bn2", "conv2.bn"):
                try:
                    last.add(block.get_submodule(candidate))
                    break
                except AttributeError:
                    continue
    return last


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN random statistics and affine parameters so that each one changes the output.

    Residual branches end with a small gain so that even the 200-block networks stay well
    conditioned in fp32: otherwise random statistics make them chaotic, and fp32 rounding alone
    (not any difference in the networks) moves the reference's own output by several percent.
    """
    gen = torch.Generator().manual_seed(seed)
    branch_ends = _last_bn_of_each_block(model)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) * 0.8 + 0.6)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                if module in branch_ends:
                    module.weight.mul_(0.2)
            elif isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
    return model.eval()


def max_relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |a - b| / max |b|: relative to the output's scale, so near-zero logits do not dominate."""
    assert ours.shape == theirs.shape, f"shape {tuple(ours.shape)} != reference {tuple(theirs.shape)}"
    assert torch.isfinite(theirs).all(), "reference output is not finite"
    return ((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-12)).item()


def load_reference_into_ours(name: str, reference: nn.Module, **kwargs) -> nn.Module:
    source = get_model_entry(name).reference
    ours = create_model(name, **kwargs).eval()
    ours.load_state_dict(convert_state_dict(reference.state_dict(), source, name), strict=True)
    return ours

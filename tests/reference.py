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
    """The reference package's model for a zoo name, in its own layout, with random weights.

    Built on the meta device and then given weights of its own here: the packages' initialisers
    draw every weight from a normal distribution, 1.5 s of the 2.2 s a ResNeSt-269 took to build
    on one core, and the parity tests compare outputs for whatever weights both models hold."""
    return _with_random_weights_(reference_on_meta(name, num_classes, in_chans, output_stride).to_empty(device="cpu"))


def reference_on_meta(name: str, num_classes: int = 1000, in_chans: int = 3, output_stride: int = 32) -> nn.Module:
    """The reference's model on the meta device: its architecture (shapes, counts), no weights."""
    with torch.device("meta"):
        return _reference(name, num_classes, in_chans, output_stride)


def _reference(name: str, num_classes: int, in_chans: int, output_stride: int) -> nn.Module:
    if get_model_entry(name).reference == "official":
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


def _bound(module: nn.Module) -> float:
    """The half-width of a uniform draw with the variance the references initialise with: He's
    2 / fan-out for convs (a grouped conv's fan-in is small; weights of 2 / fan-in made the
    269-layer networks chaotic enough that fp32 rounding alone moved their outputs by 1e-4),
    PyTorch's default 1 / (3 fan-in) for the classifier."""
    if isinstance(module, nn.Conv2d):
        return (6 / (module.out_channels * module.weight[0, 0].numel())) ** 0.5
    return 1 / module.weight.shape[1] ** 0.5


def _with_random_weights_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every conv and linear weight uniform with the variance the packages draw theirs with
    (:func:`_bound`), biases zero, every BN the identity.

    The draws are made in one flat tensor, of which each weight is a view: ``uniform_`` on a
    thousand small tensors took 1.6 s for a ResNeSt-269's weights, on one of 110 M elements 0.3 s."""
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    filled = {id(t) for m in weighted + norms for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]}
    unfilled = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if id(t) not in filled]
    if unfilled:  # a tensor nothing here fills would keep uninitialised memory
        raise AssertionError(f"reference tensors this initialiser does not fill: {unfilled[:5]}")
    generator = torch.Generator().manual_seed(seed)
    draws = torch.empty(sum(m.weight.numel() for m in weighted)).uniform_(-1, 1, generator=generator)
    start = 0
    with torch.no_grad():
        for module in weighted:
            weight = module.weight
            # a view of the draws, not a copy: writing a copy into fresh memory cost another second
            weight.data = draws[start:start + weight.numel()].view_as(weight).mul_(_bound(module))
            start += weight.numel()
            if module.bias is not None:
                module.bias.zero_()
        for module in norms:
            module.reset_parameters()  # weight 1, bias 0, mean 0, var 1, count 0
    return model


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
    # Ours on the meta device too (its own initialisation would be overwritten at once), then given
    # copies of the reference's tensors: strict, so a tensor the conversion misses still fails here.
    with torch.device("meta"):
        ours = create_model(name, **kwargs).eval()
    converted = convert_state_dict(reference.state_dict(), source, name)
    ours.load_state_dict({key: value.clone() for key, value in converted.items()}, strict=True, assign=True)
    meta = [key for key, value in [*ours.named_parameters(), *ours.named_buffers()] if value.is_meta]
    assert not meta, f"tensors of ours no state dict sets (non-persistent buffers?): {meta[:5]}"
    return ours

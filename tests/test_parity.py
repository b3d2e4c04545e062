"""Every zoo model against the reference implementation that defines it (official ResNeSt or timm).

Reference weights, with every BN's statistics and affine parameters randomised, are converted and
loaded with strict=True; our eval-mode output must then match the reference's within 1e-5
relative, on a square and a non-square (odd-sized) input (the dilated and one-channel variants on
the odd one). In float64 the two compute the same
arithmetic, so they must agree to rounding (1e-10), in eval mode and in train mode's gradients.
"""

from __future__ import annotations

import pytest
import torch

from splitattn import create_model, list_models

from .reference import load_reference_into_ours, max_relative_error, randomize_, reference_model, reference_on_meta

TOLERANCE = 1e-5
INPUT_SHAPES = ((2, 64, 64), (1, 75, 49))
# The variants (dilation, another stem and head) are checked on the odd, non-square input alone:
# it takes every rounding path the square one does, and the square batch of 2 is most of the time.
ODD_SHAPE = INPUT_SHAPES[1:]
ALL_MODELS = list_models()
# The original SENet release (timm's legacy_*) has no dilated form to compare against.
DILATABLE = [name for name in ALL_MODELS if not name.startswith("legacy_")]
FLOAT64_TOLERANCE = 1e-10
# One model per family and reference layout: official and timm ResNeSt, timm and original SENet,
# selective kernels, a plain ResNet. seresnet152 and resnest269 (the deepest, where
# float32 attention drifted most) take 15-30 s each in float64 on two cores, so the parity of their
# blocks is proven here by their shallower relatives, and in float32 by test_outputs_match_reference.
FLOAT64_MODELS = ["resnest50", "resnest14d", "seresnet18", "legacy_seresnet18", "skresnet18", "resnet18"]
FLOAT64_GRADIENT_MODELS = ["resnest14d", "seresnet18", "skresnet18"]  # the shallow ones: a backward costs more


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _assert_same_outputs(name: str, in_chans: int = 3, num_classes: int = 1000, output_stride: int = 32,
                         shapes: tuple[tuple[int, int, int], ...] = INPUT_SHAPES):
    torch.manual_seed(0)
    reference = randomize_(reference_model(name, num_classes, in_chans, output_stride))
    ours = load_reference_into_ours(name, reference, num_classes=num_classes, in_chans=in_chans,
                                    output_stride=output_stride)
    for batch, height, width in shapes:
        x = torch.randn(batch, in_chans, height, width)
        with torch.no_grad():
            expected = reference(x)
            actual = ours(x)
        assert actual.shape == (batch, num_classes)
        error = max_relative_error(actual, expected)
        assert error <= TOLERANCE, f"{name} at {height}x{width}: relative error {error:.2e}"


def test_zoo_covers_the_issue_names():
    expected = {
        "resnest50", "resnest101", "resnest200", "resnest269", "resnest50_fast_1s1x64d",
        "resnest50_fast_2s1x64d", "resnest50_fast_4s1x64d", "resnest50_fast_1s2x40d",
        "resnest50_fast_2s2x40d", "resnest50_fast_4s2x40d", "resnest50_fast_1s4x24d",
        "resnest14d", "resnest26d", "resnest50d", "resnest50d_1s4x24d", "resnest50d_4s2x40d",
        "resnest101e", "resnest200e", "resnest269e", "seresnet18", "seresnet34", "seresnet50",
        "seresnet101", "seresnet152", "seresnext26d_32x4d", "seresnext50_32x4d", "seresnext101_32x4d",
        "legacy_seresnet18", "legacy_seresnet34", "legacy_seresnet50", "legacy_seresnet101",
        "legacy_seresnet152", "legacy_seresnext26_32x4d", "legacy_seresnext50_32x4d",
        "legacy_seresnext101_32x4d", "legacy_senet154", "skresnet18", "skresnet34", "skresnet50",
        "skresnext50_32x4d", "resnet18", "resnet50", "resnet50d",
    }
    assert expected <= set(ALL_MODELS)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_parameter_count_matches_reference(name):
    with torch.device("meta"):  # shapes only: no weights drawn
        ours = create_model(name)
    assert _count(ours) == _count(reference_on_meta(name))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_outputs_match_reference(name):
    _assert_same_outputs(name)


@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("name", DILATABLE)
def test_dilated_outputs_match_reference(name, output_stride):
    _assert_same_outputs(name, output_stride=output_stride, shapes=ODD_SHAPE)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_grayscale_input_and_small_head_match_reference(name):
    _assert_same_outputs(name, in_chans=1, num_classes=10, shapes=ODD_SHAPE)


def _float64_pair(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    reference = randomize_(reference_model(name)).double()
    return reference, load_reference_into_ours(name, reference).double()


@pytest.mark.parametrize("name", FLOAT64_MODELS)
def test_float64_outputs_match_reference_to_rounding(name):
    """A float64 model pools and normalises its attention in float64 too, not in float32 (which
    left 1e-9 to 1e-8 between the two); the output keeps the dtype it was given."""
    reference, ours = _float64_pair(name)
    x = torch.randn(1, 3, 64, 48, dtype=torch.float64)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    assert actual.dtype == torch.float64
    error = max_relative_error(actual, expected)
    assert error <= FLOAT64_TOLERANCE, f"{name} in float64: relative error {error:.2e}"


@pytest.mark.parametrize("name", FLOAT64_GRADIENT_MODELS)
def test_float64_input_gradients_in_train_mode_match_reference(name):
    """Training (batch statistics, the custom backward of the weighted sum) is float64 throughout."""
    reference, ours = _float64_pair(name)
    reference.train(), ours.train()
    x = torch.randn(2, 3, 64, 48, dtype=torch.float64)
    grads = []
    for model in (reference, ours):
        leaf = x.clone().requires_grad_()
        model(leaf).square().sum().backward()
        grads.append(leaf.grad)
    assert grads[1].dtype == torch.float64
    error = max_relative_error(grads[1], grads[0])
    assert error <= FLOAT64_TOLERANCE, f"{name}: float64 input gradient relative error {error:.2e}"


@pytest.mark.parametrize("name", ["resnest50", "resnest50d", "seresnet50", "skresnext50_32x4d"])
def test_dilated_backbone_keeps_resolution(name):
    for output_stride in (8, 16, 32):
        model = create_model(name, output_stride=output_stride, features_only=True).eval()
        with torch.no_grad():
            last = model(torch.randn(1, 3, 64, 64))[-1]
        assert last.shape[-2:] == (64 // output_stride, 64 // output_stride)


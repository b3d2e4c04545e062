"""The attention layers and regularisers on their own."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import splitattn
from splitattn.inspect import summarize_model
from splitattn.layers import (
    AttentionLayer,
    DropBlock2d,
    DropPath,
    SelectiveKernelConv,
    SplitAttnConv2d,
    SqueezeExcite,
    accumulation_dtype,
    make_divisible,
    radix_softmax,
    set_drop_block_progress,
    spatial_mean,
    split_weighted_sum,
)


def test_split_attention_shapes_follow_the_paper_walkthrough():
    """64x16x16 in, radix 2, cardinality 2: 128 channels after the conv, 32-wide attention, 64 out."""
    layer = SplitAttnConv2d(64, 64, radix=2, cardinality=2).eval()
    assert layer.conv.out_channels == 128 and layer.conv.groups == 4
    assert layer.fc1.out_channels == 32 and layer.fc2.out_channels == 128
    x = torch.randn(2, 64, 16, 16)
    assert layer(x).shape == (2, 64, 16, 16)


def test_split_attention_weights_sum_to_one_in_each_cardinal_group():
    layer = SplitAttnConv2d(64, 64, radix=4, cardinality=2).eval()
    with torch.no_grad():
        activated = layer.act0(layer.bn0(layer.conv(torch.randn(3, 64, 8, 8))))
        attn = layer.attention(activated)
    assert attn.shape == (3, 4, 64)
    torch.testing.assert_close(attn.sum(1), torch.ones(3, 64))


def test_split_attention_output_is_the_weighted_sum_of_its_splits():
    layer = SplitAttnConv2d(32, 32, radix=2, cardinality=1).eval()
    x = torch.randn(1, 32, 6, 6)
    with torch.no_grad():
        activated = layer.act0(layer.bn0(layer.conv(x)))
        attn = layer.attention(activated)
        first, second = activated.split(32, dim=1)
        expected = first * attn[:, 0, :, None, None] + second * attn[:, 1, :, None, None]
        torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("radix", [1, 2, 4])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_split_weighted_sum_and_its_gradients_match_the_broadcast_formula(radix, channels_last):
    gen = torch.Generator().manual_seed(radix)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, radix * 3, 5, 4, generator=gen, dtype=torch.double).contiguous(memory_format=layout)
    weights = torch.rand(2, radix, 3, 1, 1, generator=gen, dtype=torch.double)
    x.requires_grad_(), weights.requires_grad_()

    def ours(x, weights):
        return split_weighted_sum(x.view(2, radix, 3, 5, 4), weights)

    expected = (x.view(2, radix, 3, 5, 4) * weights).sum(1)
    torch.testing.assert_close(ours(x, weights), expected)
    assert torch.autograd.gradcheck(ours, (x, weights))
    ours(x, weights).sum().backward()
    assert x.grad.is_contiguous(memory_format=layout), "the gradient should keep the input's layout"
    with torch.no_grad():
        torch.testing.assert_close(ours(x, weights), expected)  # the no-autograd path


def test_split_weighted_sum_under_bfloat16_autocast_keeps_input_dtypes_for_gradients():
    x = torch.randn(2, 8, 3, 3, dtype=torch.bfloat16, requires_grad=True)
    weights = torch.rand(2, 2, 4, 1, 1, requires_grad=True)  # softmax output stays float32 under autocast
    split_weighted_sum(x.view(2, 2, 4, 3, 3), weights).sum().backward()
    assert x.grad.dtype == torch.bfloat16 and weights.grad.dtype == torch.float32
    with pytest.raises(ValueError, match=r"expected splits \(B, R, C, H, W\)"):
        split_weighted_sum(x, weights)


def test_radix_softmax_is_radix_major_and_sigmoid_for_one_split():
    logits = torch.randn(2, 2 * 3 * 4)  # cardinality 2, radix 3, 4 channels per group
    out = radix_softmax(logits, radix=3, cardinality=2)
    expected = logits.view(2, 2, 3, 4).softmax(dim=2).transpose(1, 2).reshape(2, 3, 8)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(radix_softmax(logits, 1, 2), torch.sigmoid(logits).view(2, 1, -1))


def test_attention_pools_and_normalises_in_float32_or_wider():
    """Reduced precision is raised to float32 for the sums; float64 is kept, never lowered to float32."""
    dtypes = (torch.bfloat16, torch.float16, torch.float32, torch.float64)
    assert [accumulation_dtype(torch.zeros(1, dtype=d)) for d in dtypes] == [torch.float32] * 3 + [torch.float64]
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 1.0
    torch.testing.assert_close(spatial_mean(x), x.mean((-2, -1)), rtol=1e-14, atol=0.0)
    # 4096 positions summed in bfloat16 would lose whole units of the sum; in float32 only the final cast rounds
    low = x.to(torch.bfloat16)
    pooled = spatial_mean(low)
    exact = low.double().mean((-2, -1))
    assert pooled.dtype == torch.bfloat16
    assert ((pooled.double() - exact).abs() / exact).max() <= 2.0**-8
    logits = torch.randn(2, 2 * 3 * 4, dtype=torch.float64)
    out = radix_softmax(logits, radix=3, cardinality=2)
    assert out.dtype == torch.float64
    expected = logits.view(2, 2, 3, 4).softmax(dim=2).transpose(1, 2).reshape(2, 3, 8)
    torch.testing.assert_close(out, expected, rtol=1e-15, atol=1e-15)
    layer = SelectiveKernelConv(8, 8, num_paths=2, attn_channels=8).double().eval()
    with torch.no_grad():
        weights = layer.attn(torch.stack([p(torch.randn(1, 8, 5, 5, dtype=torch.float64)) for p in layer.paths], 1))
    assert weights.dtype == torch.float64
    torch.testing.assert_close(weights.sum(1), torch.ones_like(weights.sum(1)), rtol=0.0, atol=1e-15)


def test_split_attention_rejects_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=r"divisible by radix \* cardinality"):
        SplitAttnConv2d(64, 64, radix=3, cardinality=1)


def test_squeeze_excite_scales_each_channel_by_a_gate():
    layer = SqueezeExcite(32, 8).eval()
    x = torch.randn(2, 32, 5, 5)
    # the paper's gate, computed by hand: sigmoid(W2 relu(W1 mean(x) + b1) + b2) per image and channel
    pooled = x.mean(dim=(2, 3))
    hidden = torch.relu(pooled @ layer.fc1.weight.view(8, 32).T + layer.fc1.bias)
    expected = torch.sigmoid(hidden @ layer.fc2.weight.view(32, 8).T + layer.fc2.bias).view(2, 32, 1, 1)
    torch.testing.assert_close(layer.attention(x), expected)
    torch.testing.assert_close(layer(x), x * expected)


def test_selective_kernel_uses_dilated_3x3_in_place_of_5x5():
    layer = SelectiveKernelConv(64, 64, num_paths=2, attn_channels=32).eval()
    assert [p.conv.dilation for p in layer.paths] == [(1, 1), (2, 2)]
    assert all(p.conv.kernel_size == (3, 3) for p in layer.paths)
    x = torch.randn(2, 64, 9, 7)
    assert layer(x).shape == (2, 64, 9, 7)
    with torch.no_grad():
        paths = torch.stack([p(x) for p in layer.paths], dim=1)
        torch.testing.assert_close(layer.attn(paths).sum(1), torch.ones(2, 64, 1, 1))


def test_make_divisible_rounds_to_the_divisor_with_a_floor():
    assert make_divisible(4, 8) == 8
    assert make_divisible(20, 8) == 24
    assert make_divisible(8, 32) == 32
    assert make_divisible(64, 32) == 64


def test_drop_block_is_identity_in_eval_and_drops_blocks_in_training():
    torch.manual_seed(0)
    layer = DropBlock2d(0.2, block_size=3)
    x = torch.ones(8, 16, 16, 16)
    assert torch.equal(layer.eval()(x), x)
    out = layer.train()(x)
    dropped = (out == 0).float().mean().item()
    assert 0.12 < dropped < 0.28, f"dropped fraction {dropped:.3f}, expected about 0.2"
    # survivors are rescaled so the expected activation is unchanged
    assert abs(out.mean().item() - 1.0) < 1e-4
    # zeros come in whole 3x3 blocks: every dropped pixel lies in an all-dropped 3x3 window
    zeros = (out == 0).float().flatten(0, 1).unsqueeze(1)
    whole_windows = -F.max_pool2d(-zeros, 3, stride=1)
    covered = F.max_pool2d(F.pad(whole_windows, (2, 2, 2, 2)), 3, stride=1)
    assert zeros.any() and (covered >= zeros).all()


def test_drop_block_ramps_linearly_to_its_target():
    model = torch.nn.Sequential(DropBlock2d(0.1), torch.nn.Identity(), DropBlock2d(0.2))
    set_drop_block_progress(model, 0.0)
    assert [m.drop_prob for m in (model[0], model[2])] == [0.0, 0.0]
    set_drop_block_progress(model, 0.5)
    assert [m.drop_prob for m in (model[0], model[2])] == pytest.approx([0.05, 0.1])
    set_drop_block_progress(model, 7.0)  # clamped at the target
    assert [m.drop_prob for m in (model[0], model[2])] == pytest.approx([0.1, 0.2])


def test_drop_path_drops_whole_samples_in_training_only():
    torch.manual_seed(0)
    layer = DropPath(0.5)
    x = torch.ones(64, 3, 4, 4)
    assert torch.equal(layer.eval()(x), x)
    out = layer.train()(x)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample.amin(1) == per_sample.amax(1)).all(), "a sample is dropped whole or kept whole"


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_regularisers_reject_rates_outside_zero_one(bad):
    with pytest.raises(ValueError, match="must be in"):
        DropBlock2d(bad)
    with pytest.raises(ValueError, match="must be in"):
        DropPath(bad)


# Every attention kind in each configuration whose forward makes different calls: split attention
# with radix 2 and radix 1, SE gates with and without their input ReLU, selective kernels whose
# branches share or split the input.
STEP_MODELS = ["resnest14d", "resnest50_fast_1s1x64d", "seresnet18", "legacy_seresnet18", "skresnet18",
               "skresnext50_32x4d"]


def test_every_step_of_every_kinds_forward_is_described_and_every_note_is_used():
    """The summary names a layer's steps by the calls its forward makes. A rewritten forward (a new
    call, a renamed helper) must fail here, not silently drop a note from ``splitattn summary``."""
    used: dict[type, set[str]] = {}
    layers: dict[type, torch.nn.Module] = {}
    for name in STEP_MODELS:
        summary = summarize_model(name, (3, 64, 64), num_classes=10)
        assert not summary.untraced, f"{name}: forward not traceable for {summary.untraced}"
        with torch.device("meta"):
            modules = dict(splitattn.create_model(name, num_classes=10).named_modules())
        undescribed = [f"{row.path} ({row.type})" for row in summary.rows if row.step and not row.note]
        assert not undescribed, f"{name}: steps without a note: {undescribed}"
        for row in summary.rows:
            if row.step:
                layer = modules[row.path.rpartition(".")[0]]
                used.setdefault(type(layer), set()).add(row.type.removesuffix("()"))
                layers.setdefault(type(layer), layer)
    attention_types = {t for t in layers if issubclass(t, AttentionLayer)}
    assert {t.__name__ for t in attention_types} >= {"SplitAttnConv2d", "SqueezeExcite", "SelectiveKernelConv",
                                                      "SelectiveKernelAttn"}
    for layer_type in attention_types:
        unused = set(layers[layer_type].step_notes()) - used[layer_type]
        assert not unused, f"{layer_type.__name__} declares notes for calls its forward no longer makes: {unused}"

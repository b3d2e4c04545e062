"""The model API as a user meets it: building by name, training, backbones and clear errors."""

from __future__ import annotations

import pytest
import torch

import splitattn
from splitattn import create_model, list_models
from splitattn.layers import SplitAttention

# One small model of each family and block type.
SMALL = ["resnest14d", "seresnet18", "legacy_seresnet18", "skresnet18", "skresnext50_32x4d", "resnet18"]


@pytest.mark.parametrize("name", SMALL)
def test_train_step_runs_and_updates_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, zero_init_last=False).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    before = model.fc.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, model.fc.weight)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("regulariser", ["drop_block_rate", "drop_path_rate"])
@pytest.mark.parametrize("name", ["resnest14d", "seresnet18", "skresnet18"])
def test_drop_block_and_drop_path_act_in_training_only(name, regulariser):
    torch.manual_seed(0)
    # zero_init_last=False: a zero-initialised branch outputs zeros whatever is dropped from it
    model = create_model(name, num_classes=10, zero_init_last=False, **{regulariser: 0.3})
    module_type = splitattn.DropBlock2d if regulariser == "drop_block_rate" else splitattn.DropPath
    assert any(isinstance(m, module_type) for m in model.modules())
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x)), "eval mode must be deterministic"
        model.train()
        first, second = model(x), model(x)
    assert not torch.allclose(first, second), f"train mode must apply {regulariser}"


def test_drop_path_grows_linearly_with_depth():
    model = create_model("resnest26d", drop_path_rate=0.2)
    rates = [m.drop_prob for m in model.modules() if isinstance(m, splitattn.DropPath)]
    assert len(rates) == 7  # the first of the 8 blocks has rate 0
    assert rates[-1] == pytest.approx(0.2)
    assert rates == pytest.approx([0.2 * i / 7 for i in range(1, 8)]), "linear in block index"
    # In training, each block's drop path zeroes its branch for that fraction of the samples and
    # scales the others up to keep the mean: none in the first block, a fifth in the last.
    torch.manual_seed(0)
    branch = torch.ones(4000, 1, 1, 1)
    for block, module in enumerate((m for m in model.train().modules() if isinstance(m, splitattn.DropPath)), 1):
        out = module(branch)
        rate = 0.2 * block / 7
        assert (out == 0).float().mean().item() == pytest.approx(rate, abs=0.03), f"block {block}"
        assert out.unique().tolist() == pytest.approx([0.0, 1 / (1 - rate)]), f"block {block}"


def test_drop_block_only_in_last_two_stages():
    model = create_model("resnest26d", drop_block_rate=0.1)
    stages_with = {name.split(".")[0] for name, m in model.named_modules() if isinstance(m, splitattn.DropBlock2d)}
    assert stages_with == {"layer3", "layer4"}


def test_zero_init_last_starts_every_residual_branch_at_zero():
    model = create_model("resnest14d")
    assert all((block.bn3.weight == 0).all() for stage in model.stages for block in stage)
    model = create_model("resnest14d", zero_init_last=False)
    assert all((block.bn3.weight == 1).all() for stage in model.stages for block in stage)


def test_dropout_before_classifier():
    model = create_model("resnet18", drop_rate=0.5, num_classes=3)
    # Through the whole model: in training, the classifier sees the pooled features with about
    # half of them zeroed and the rest doubled.
    torch.manual_seed(0)
    seen = []
    model.fc.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        model.train()(x)
        features = model.forward_features(x)  # train-mode BN as in the call above
        pooled = model.eval().forward_head(features, pre_logits=True)
    nonzero = pooled != 0
    dropped = (seen[0] == 0) & nonzero
    assert 0.4 < dropped.sum() / nonzero.sum() < 0.6
    torch.testing.assert_close(seen[0][~dropped], 2 * pooled[~dropped])
    features = torch.ones(64, 512, 1, 1)
    dropped = model.train().forward_head(features, pre_logits=True)
    assert 0.4 < (dropped == 0).float().mean() < 0.6 and set(dropped.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(model.eval().forward_head(features, pre_logits=True), features.flatten(1))


def test_features_only_returns_stage_maps_with_channels_and_strides():
    model = create_model("resnest50d", features_only=True, out_indices=(0, 1, 2, 3, 4)).eval()
    assert model.feature_channels == [64, 256, 512, 1024, 2048]
    assert model.feature_strides == [2, 4, 8, 16, 32]
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 64, 96))
    assert [m.shape[1] for m in maps] == model.feature_channels
    assert [(64 // s, 96 // s) for s in model.feature_strides] == [tuple(m.shape[-2:]) for m in maps]
    assert not any(n.startswith("fc.") for n, _ in model.named_parameters())


def test_features_only_drops_unused_stages_and_rejects_bad_indices():
    model = create_model("seresnet18", features_only=True, out_indices=(1, 2))
    assert not hasattr(model, "layer3") and not hasattr(model, "layer4")
    assert len(model(torch.randn(1, 3, 32, 32))) == 2
    with pytest.raises(ValueError, match="out_indices"):
        create_model("seresnet18", features_only=True, out_indices=(5,))


def test_forward_head_pre_logits_and_reset_classifier():
    model = create_model("resnet18").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 512, 1, 1)
        assert model.forward_head(features, pre_logits=True).shape == (2, 512)
        model.reset_classifier(7)
        assert model(x).shape == (2, 7)
        model.reset_classifier(0)
        assert model(x).shape == (2, 512)


def test_pretrained_cfg_is_data_on_the_model():
    cfg = create_model("resnest269").pretrained_cfg
    assert cfg["input_size"] == (3, 416, 416)
    assert cfg["crop_pct"] == pytest.approx(0.928)
    assert cfg["interpolation"] == "bicubic"
    assert cfg["paper_top1"] == pytest.approx(84.54)  # the paper's number
    assert cfg["top1"] == pytest.approx(84.54) and cfg["tag"] == "in1k"  # what the published weights reach
    assert cfg["license"] == "apache-2.0" and cfg["sources"][0].startswith("https://github.com/zhanghang1989/")
    assert cfg["mean"] == (0.485, 0.456, 0.406)
    plain = create_model("skresnet50").pretrained_cfg  # no published weights, no paper number
    assert plain["top1"] is None and plain["paper_top1"] is None and plain["sources"] == ()


def test_list_models_filters_by_pattern():
    assert list_models("resnest50_fast_*") == sorted(
        f"resnest50_fast_{v}" for v in ("1s1x64d", "2s1x64d", "4s1x64d", "1s2x40d", "2s2x40d", "4s2x40d", "1s4x24d")
    )
    assert "skresnext50_32x4d" in list_models("sk*")
    assert list_models("no_such_*") == []


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnest5'.*Did you mean.*resnest50"):
        create_model("resnest5")


def test_channels_not_divisible_by_radix_times_cardinality():
    with pytest.raises(ValueError, match=r"must be divisible by radix \* cardinality \(3 \* 1 = 3\)"):
        create_model("resnest14d", attn_args={"radix": 3})


@pytest.mark.parametrize("output_stride", [4, 12, 64])
def test_output_stride_must_be_8_16_or_32(output_stride):
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16, 32\)"):
        create_model("resnest14d", output_stride=output_stride)


def test_input_must_be_4d_with_the_right_channels():
    model = create_model("resnet18", in_chans=1).eval()
    with pytest.raises(ValueError, match=r"expected a 4-D input of shape \(N, 1, H, W\), got 3-D"):
        model(torch.randn(1, 32, 32))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, H, W\).*got shape \(2, 3, 32, 32\)"):
        model(torch.randn(2, 3, 32, 32))


def test_other_bad_configurations_name_the_problem():
    with pytest.raises(TypeError, match="attn must be an attention spec"):
        create_model("resnet18", attn="cbam")
    with pytest.raises(ValueError, match="SplitAttention needs Bottleneck blocks"):
        create_model("resnet18", attn=SplitAttention())
    with pytest.raises(ValueError, match="num_classes must be >= 0"):
        create_model("resnet18", num_classes=-1)
    with pytest.raises(ValueError, match="in_chans must be >= 1"):
        create_model("resnet18", in_chans=0)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = create_model("resnest14d", num_classes=4, zero_init_last=False).eval()
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for enable in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enable)
        model(x).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for plain, checkpointed in zip(*grads, strict=True):
        torch.testing.assert_close(plain, checkpointed)


@pytest.mark.parametrize("granularity", ["stage", "block"])
def test_backbones_checkpoint_too(granularity):
    """A features-only backbone (detection, segmentation) recomputes its blocks in the backward pass."""
    torch.manual_seed(0)
    backbone = create_model("resnest14d", features_only=True, zero_init_last=False).eval()
    block, calls = backbone.layer2[0], []
    block_forward = block.forward

    def counting_forward(x: torch.Tensor) -> torch.Tensor:  # module hooks do not fire while recomputing
        calls.append(1)
        return block_forward(x)

    block.forward = counting_forward
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for enable in (False, True):
        backbone.zero_grad()
        calls.clear()
        backbone.set_grad_checkpointing(enable, granularity=granularity)
        sum(m.sum() for m in backbone(x)).backward()
        assert len(calls) == (2 if enable else 1), "a checkpointed block runs again during backward"
        grads.append([p.grad.clone() for p in backbone.parameters()])
    for plain, checkpointed in zip(*grads, strict=True):
        torch.testing.assert_close(plain, checkpointed)


@pytest.mark.parametrize(("name", "official_pool"), [("resnest26d", False), ("resnest50", True)])
def test_output_stride_8_dilates_the_last_two_stages_from_their_second_block(name, official_pool):
    """The first block of a dilated stage keeps the previous stage's dilation (where it would have
    strided), the others double it; only the official release keeps ResNeSt's stride-1 pool there."""
    with torch.device("meta"):
        model = create_model(name, output_stride=8)
    assert [info.stride for info in model.feature_info] == [2, 4, 8, 8, 8]
    dilations = [[block.conv2.conv.dilation[0] for block in stage] for stage in model.stages]
    assert [d[:2] for d in dilations] == [[1, 1], [1, 1], [1, 2], [2, 4]]
    assert all(block.conv2.conv.stride == (1, 1) for stage in model.stages[2:] for block in stage)
    first_pool = model.layer3[0].avd_last
    assert isinstance(first_pool, torch.nn.AvgPool2d) == official_pool
    if official_pool:
        assert first_pool.stride == 1
    assert isinstance(model.layer2[0].avd_last, torch.nn.AvgPool2d) and model.layer2[0].avd_last.stride == 2


def test_zoo_records_take_keywords_only():
    """Adjacent strings (tag, top1_by, license, trained_by; name, family, reference) cannot be swapped by position."""
    from splitattn.models.published import PublishedWeights, hub
    from splitattn.models.registry import ModelEntry

    with pytest.raises(TypeError, match="positional"):
        PublishedWeights("in1k", (hub("timm/x"),), 70.0, "timm", "apache-2.0", "timm")
    with pytest.raises(TypeError, match="positional"):
        ModelEntry("x", "resnet", "timm", {})
    weights = PublishedWeights(tag="in1k", sources=(hub("timm/x"),), top1=70.0, top1_by="timm",
                               license="apache-2.0", trained_by="timm")
    entry = ModelEntry(name="x", family="resnet", reference="timm", architecture={}, weights=(weights,))
    assert entry.tags == ("in1k",)

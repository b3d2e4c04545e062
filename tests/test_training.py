"""The training recipe's numbers, checked one by one."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from splitattn import create_model
from splitattn.data import batch_mix
from splitattn.layers import DropBlock2d, set_drop_block_progress
from splitattn.training import TrainConfig, build_config, build_optimizer, build_scheduler, param_groups
from splitattn.training.config import imagenet_recipe

# The ResNeSt paper's ImageNet crop size per depth.
RESNEST_CROP = {50: 224, 101: 256, 200: 320, 269: 416}


def _lr_curve(epochs=10, steps=100, warmup=5, base=0.4):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    scheduler = build_scheduler(optimizer, epochs, steps, warmup)
    lrs = []
    for _ in range(epochs * steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_learning_rate_warms_up_linearly_then_follows_a_cosine():
    lrs, base, warmup_steps, total = _lr_curve(), 0.4, 500, 1000
    assert lrs[0] == pytest.approx(base * 1e-3)
    assert lrs[250] == pytest.approx(base * (1e-3 + (1 - 1e-3) * 0.5), rel=1e-6)  # half-way through warm-up
    assert lrs[warmup_steps] == pytest.approx(base)
    for step in (600, 750, 900, 999):
        expected = base * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total - warmup_steps)))
        assert lrs[step] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert lrs[750] == pytest.approx(base / 2)


def test_learning_rate_scales_with_the_global_batch():
    config = TrainConfig(batch_size=64)
    assert config.scaled_lr(world_size=8) == pytest.approx(0.1 * 512 / 256)
    assert TrainConfig(batch_size=64, lr=0.01).scaled_lr(world_size=8) == 0.01


def test_no_weight_decay_on_batchnorm_and_biases():
    model = create_model("resnest14d", num_classes=10)
    decay, no_decay = param_groups(model, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    bn_and_bias = {id(p) for n, p in model.named_parameters() if p.ndim == 1}
    assert {id(p) for p in no_decay["params"]} == bn_and_bias
    assert id(model.layer1[0].bn1.weight) in bn_and_bias and id(model.fc.bias) in bn_and_bias
    assert id(model.layer1[0].conv2.fc1.bias) in bn_and_bias
    assert all(p.ndim > 1 for p in decay["params"])
    optimizer = build_optimizer(model, lr=0.1, momentum=0.9, weight_decay=1e-4)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-4, 0.0]
    assert optimizer.defaults["momentum"] == 0.9


def test_imagenet_recipe_matches_the_paper():
    for depth, crop in RESNEST_CROP.items():
        recipe = imagenet_recipe(f"resnest{depth}")
        assert recipe["image_size"] == crop
        assert recipe["drop_block_rate"] == (0.1 if depth >= 200 else 0.0)
        assert recipe["interpolation"] == ("bicubic" if depth >= 200 else "bilinear")
    # other families train at the size and interpolation their published weights used
    assert (imagenet_recipe("seresnet101")["image_size"], imagenet_recipe("seresnet101")["interpolation"]) == (
        224, "bicubic")
    config = build_config("imagenet", overrides={"model": "resnest50"})
    assert (config.epochs, config.warmup_epochs, config.momentum, config.weight_decay) == (270, 5, 0.9, 1e-4)
    assert (config.label_smoothing, config.mixup, config.drop_rate) == (0.1, 0.2, 0.2)
    assert config.auto_augment and config.zero_init_last and config.no_decay_bn_bias
    # every piece can be switched off or changed
    config = build_config("imagenet", overrides={"model": "resnest269", "mixup": "0", "auto_augment": "false"})
    assert config.mixup == 0.0 and config.auto_augment is False and config.image_size == 416


def test_config_file_and_overrides_are_validated(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nmodel: seresnet18\n")
    config = build_config(config_file=path, overrides={"epochs": "5"})
    assert (config.epochs, config.model) == (5, "seresnet18")
    with pytest.raises(ValueError, match="unknown config option 'epoch'"):
        build_config(overrides={"epoch": "3"})
    with pytest.raises(ValueError, match=r"\(from command line\); did you mean 'epochs'\?"):
        build_config(overrides={"epoch": "3"})
    with pytest.raises(ValueError, match="config epochs expects a number"):
        build_config(overrides={"epochs": "many"})
    with pytest.raises(ValueError, match=r"config epochs expects a whole number, got '2\.5'"):
        build_config(overrides={"epochs": "2.5"})
    config = build_config(overrides={"optimizer": "adamw", "output": "2024", "lr": "1"})
    assert (config.optimizer, config.output, config.lr) == ("adamw", "2024", 1.0)  # text stays text, numbers typed
    with pytest.raises(ValueError, match="unknown preset"):
        build_config("cifar")


def test_drop_block_ramps_from_zero_to_the_target_over_training():
    model = create_model("resnest26d", drop_block_rate=0.1)
    blocks = [m for m in model.modules() if isinstance(m, DropBlock2d)]
    assert blocks and all(m.drop_prob == 0.1 for m in blocks)
    for progress, expected in ((0.0, 0.0), (0.25, 0.025), (1.0, 0.1)):
        set_drop_block_progress(model, progress)
        assert all(m.drop_prob == pytest.approx(expected) for m in blocks)


def test_mixup_targets_are_the_same_convex_combination_as_the_images():
    torch.manual_seed(0)
    mix = batch_mix(num_classes=4, mixup=0.2, cutmix=0.0)
    images = torch.randn(6, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    mixed, targets = mix(images, labels)
    assert targets.shape == (6, 4)
    torch.testing.assert_close(targets.sum(1), torch.ones(6))
    # torchvision mixes each sample with the batch rolled by one; sample 0 (label 0) meets label 1
    rolled_images, rolled_labels = images.roll(1, 0), labels.roll(1, 0)
    lam = float(targets[0, 0])
    assert 0.0 <= lam <= 1.0
    expected = lam * F.one_hot(labels, 4) + (1 - lam) * F.one_hot(rolled_labels, 4)
    torch.testing.assert_close(targets, expected.float())
    torch.testing.assert_close(mixed, lam * images + (1 - lam) * rolled_images)

"""Train and eval transforms from torchvision's transforms v2; nothing hand-written here."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

INTERPOLATIONS = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
                  "nearest": InterpolationMode.NEAREST}


def interpolation_mode(name: str) -> InterpolationMode:
    try:
        return INTERPOLATIONS[name]
    except KeyError:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {name!r}") from None


def train_transform(
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str = "bilinear",
    random_resized_crop: bool = True,
    hflip: bool = True,
    auto_augment: bool = False,
    rand_augment: bool = False,
) -> T.Compose:
    """ImageNet-style (random resized crop, flip, AutoAugment or RandAugment) or, for small images, pad-and-crop."""
    mode = interpolation_mode(interpolation)
    steps: list = [T.ToImage()]
    if random_resized_crop:
        steps.append(T.RandomResizedCrop(size, interpolation=mode, antialias=True))
    else:
        steps += [T.Resize((size, size), interpolation=mode, antialias=True), T.RandomCrop(size, padding=size // 8)]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    if auto_augment:
        steps.append(T.AutoAugment(T.AutoAugmentPolicy.IMAGENET, interpolation=mode))
    if rand_augment:
        steps.append(T.RandAugment(interpolation=mode))
    steps += [T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    return T.Compose(steps)


def eval_transform(
    size: int, mean: Sequence[float], std: Sequence[float], crop_pct: float = 0.875, interpolation: str = "bilinear"
) -> T.Compose:
    """Resize the short side to ``size / crop_pct``, then take the centre ``size`` crop."""
    return T.Compose([T.ToImage(), eval_crop(size, crop_pct, interpolation), T.ToDtype(torch.float32, scale=True),
                      T.Normalize(mean, std)])


def eval_crop(size: int, crop_pct: float = 0.875, interpolation: str = "bilinear") -> T.Compose:
    """The geometry of :func:`eval_transform` alone, for whoever also needs the crop as pixels."""
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    mode = interpolation_mode(interpolation)
    return T.Compose([T.Resize(round(size / crop_pct), interpolation=mode, antialias=True), T.CenterCrop(size)])


def batch_mix(num_classes: int, mixup: float, cutmix: float) -> T.Transform | None:
    """MixUp and/or CutMix on a batch (one of them per batch when both are on), or None."""
    choices = []
    if mixup > 0:
        choices.append(T.MixUp(alpha=mixup, num_classes=num_classes))
    if cutmix > 0:
        choices.append(T.CutMix(alpha=cutmix, num_classes=num_classes))
    if not choices:
        return None
    return choices[0] if len(choices) == 1 else T.RandomChoice(choices)

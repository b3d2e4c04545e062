"""Train and eval transforms from torchvision's transforms v2; nothing hand-written here."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from .errors import DataError

INTERPOLATIONS = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
                  "nearest": InterpolationMode.NEAREST}


@dataclass(frozen=True)
class AugmentPolicy:
    """An image-level augmentation policy a recipe can turn on by its option name.

    The policies each draw a chain of colour and geometry operations per image; stacking two of
    them would apply both chains, which no published recipe does, so a recipe takes at most one.
    """

    option: str  # the train_transform argument and TrainConfig field that turns it on
    label: str  # its name in papers and model cards
    build: Callable[[InterpolationMode], T.Transform]


# The ResNeSt paper trains with AutoAugment's ImageNet policy; RandAugment and TrivialAugment are
# what timm's and torchvision's recipes use instead.
AUGMENT_POLICIES = (
    AugmentPolicy("auto_augment", "AutoAugment",
                  lambda mode: T.AutoAugment(T.AutoAugmentPolicy.IMAGENET, interpolation=mode)),
    AugmentPolicy("rand_augment", "RandAugment", lambda mode: T.RandAugment(interpolation=mode)),
    AugmentPolicy("trivial_augment", "TrivialAugment", lambda mode: T.TrivialAugmentWide(interpolation=mode)),
)


def chosen_policy(random_erasing: float = 0.0, **switches: bool) -> AugmentPolicy | None:
    """The policy of :data:`AUGMENT_POLICIES` whose option is on in ``switches``, or None; checks
    ``random_erasing`` too, so that a config and :func:`train_transform` refuse the same things.

    Args:
        random_erasing: probability of erasing a rectangle of an image, in [0, 1].
        switches: ``auto_augment=True`` and the like; each name must be a policy's option.

    Raises:
        ValueError: an unknown option, more than one policy on, or a probability outside [0, 1].
    """
    options = [policy.option for policy in AUGMENT_POLICIES]
    unknown = sorted(set(switches) - set(options))
    if unknown:
        raise DataError(f"unknown augmentation option(s) {unknown}; expected {', '.join(options)}")
    on = [policy for policy in AUGMENT_POLICIES if switches.get(policy.option)]
    if len(on) > 1:
        names = " and ".join(f"{policy.option}=true" for policy in on)
        raise DataError(f"at most one of {', '.join(options)} can be on, got {names}; turn the others off "
                        f"(e.g. {on[0].option}=false)")
    if isinstance(random_erasing, bool) or not 0.0 <= random_erasing <= 1.0:
        raise DataError(f"random_erasing is a probability and must be in [0, 1], got {random_erasing!r}")
    return on[0] if on else None


def interpolation_mode(name: str) -> InterpolationMode:
    try:
        return INTERPOLATIONS[name]
    except KeyError:
        raise DataError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {name!r}") from None


def train_transform(
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str = "bilinear",
    random_resized_crop: bool = True,
    hflip: bool = True,
    auto_augment: bool = False,
    rand_augment: bool = False,
    trivial_augment: bool = False,
    random_erasing: float = 0.0,
) -> T.Compose:
    """ImageNet-style (random resized crop, flip, one augmentation policy) or, for small images, pad-and-crop.

    Random erasing comes last, after normalisation, as in timm: the erased rectangle is filled with
    per-pixel normal noise, which in normalised units is noise of the data's own mean and spread
    (timm's "pixel" mode), rather than a black patch that would be an outlier colour.

    Args:
        size: output crop size in pixels.
        mean: per-channel mean to subtract (the model's pretrained config says which).
        std: per-channel standard deviation to divide by.
        interpolation: resize filter, one of :data:`INTERPOLATIONS`.
        random_resized_crop: ImageNet's random-scale crop; else resize and pad-and-crop.
        hflip: random horizontal flips.
        auto_augment: AutoAugment's ImageNet policy (the ResNeSt paper's).
        rand_augment: RandAugment.
        trivial_augment: TrivialAugment (wide), one random operation of random strength per image.
        random_erasing: probability of erasing one random rectangle of each image (0 turns it off).

    Raises:
        ValueError: more than one of the three policies, or ``random_erasing`` outside [0, 1].
    """
    policy = chosen_policy(random_erasing, auto_augment=auto_augment, rand_augment=rand_augment,
                           trivial_augment=trivial_augment)
    mode = interpolation_mode(interpolation)
    steps: list = [T.ToImage()]
    if random_resized_crop:
        steps.append(T.RandomResizedCrop(size, interpolation=mode, antialias=True))
    else:
        steps += [T.Resize((size, size), interpolation=mode, antialias=True), T.RandomCrop(size, padding=size // 8)]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    if policy is not None:
        steps.append(policy.build(mode))
    steps += [T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    if random_erasing > 0:
        steps.append(T.RandomErasing(p=random_erasing, value="random"))
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
        raise DataError(f"crop_pct must be in (0, 1], got {crop_pct}")
    mode = interpolation_mode(interpolation)
    # floor, as timm's validate.py: 256 px at 0.875 resizes to 292, not 293, or published top-1s are not reproduced
    return T.Compose([T.Resize(math.floor(size / crop_pct), interpolation=mode, antialias=True), T.CenterCrop(size)])


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

"""Random erasing and TrivialAugment as recipe options, beside AutoAugment and RandAugment."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2 as T

from splitattn.cli import main as cli_main
from splitattn.data import train_transform
from splitattn.training import Trainer
from splitattn.training.config import build_config, save_config
from splitattn.training.runtime import Runtime

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _image() -> Image.Image:
    """A picture with structure, so that augmentations have something to change."""
    image = Image.new("RGB", (32, 32), (30, 120, 200))
    for x in range(0, 32, 4):
        image.paste((240, 40, 10), (x, 0, x + 2, 32))
    return image


def test_train_transform_includes_the_options_asked_for():
    steps = train_transform(24, MEAN, STD, trivial_augment=True, random_erasing=0.25).transforms
    kinds = [type(step) for step in steps]
    assert T.TrivialAugmentWide in kinds and T.RandomErasing in kinds
    assert T.AutoAugment not in kinds and T.RandAugment not in kinds
    # timm's order: erasing acts on the normalised tensor, so it comes after Normalize
    assert kinds.index(T.RandomErasing) == kinds.index(T.Normalize) + 1
    assert steps[kinds.index(T.RandomErasing)].p == 0.25
    plain = [type(step) for step in train_transform(24, MEAN, STD).transforms]
    assert T.RandomErasing not in plain and T.TrivialAugmentWide not in plain


def test_random_erasing_with_p_1_changes_a_rectangle_of_every_image():
    image = _image()
    torch.manual_seed(0)
    plain = train_transform(32, MEAN, STD, random_resized_crop=False)
    erasing = train_transform(32, MEAN, STD, random_resized_crop=False, random_erasing=1.0)
    for seed in range(4):
        torch.manual_seed(seed)
        expected = plain(image)
        torch.manual_seed(seed)  # same crop and flip: erasing is the only difference
        erased = erasing(image)
        changed = (erased != expected).any(dim=0)
        assert changed.any(), f"seed {seed}: nothing erased at p=1"
        rows, cols = changed.nonzero(as_tuple=True)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert changed.sum() >= 0.9 * box, "the erased pixels form one rectangle"
        # 2% to a third of the area, as in timm and torchvision (give or take the rounding of its sides)
        assert 0.01 * 32 * 32 <= box <= 0.4 * 32 * 32
        torch.manual_seed(seed)
        assert torch.equal(train_transform(32, MEAN, STD, random_resized_crop=False, random_erasing=0.0)(image),
                           expected)


def test_trivial_augment_changes_images_and_keeps_their_shape():
    image = _image()
    transform = train_transform(24, MEAN, STD, random_resized_crop=False, trivial_augment=True)
    plain = train_transform(24, MEAN, STD, random_resized_crop=False)
    differing = 0
    for seed in range(8):
        torch.manual_seed(seed)
        augmented = transform(image)
        torch.manual_seed(seed)
        differing += not torch.equal(augmented, plain(image))
        assert augmented.shape == (3, 24, 24) and augmented.dtype == torch.float32
    assert differing >= 4, "one random operation per image: most images change"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"trivial_augment": "true", "auto_augment": "true"},
     r"at most one of auto_augment, rand_augment, trivial_augment can be on, "
     r"got auto_augment=true and trivial_augment=true"),
    ({"rand_augment": "true", "trivial_augment": "true"}, r"rand_augment=true and trivial_augment=true"),
    ({"random_erasing": "1.5"}, r"random_erasing is a probability and must be in \[0, 1\], got 1.5"),
    ({"random_erasing": "-0.1"}, r"must be in \[0, 1\], got -0.1"),
    ({"random_erasing": "yes"}, r"config random_erasing expects a number"),
])
def test_config_refuses_bad_augmentation_settings(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_config(overrides=overrides)


def test_transform_refuses_what_the_config_refuses():
    with pytest.raises(ValueError, match="at most one of"):
        train_transform(24, MEAN, STD, auto_augment=True, rand_augment=True)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        train_transform(24, MEAN, STD, random_erasing=2.0)


def test_the_imagenet_preset_keeps_the_papers_augmentation(tmp_path, capsys):
    """The paper trains with AutoAugment and no random erasing; turning TrivialAugment on instead
    needs AutoAugment off, which the error says."""
    config = build_config("imagenet", overrides={"model": "resnest50d"})
    assert config.auto_augment and not config.trivial_augment and config.random_erasing == 0.0
    with pytest.raises(ValueError, match=r"e\.g\. auto_augment=false"):
        build_config("imagenet", overrides={"model": "resnest50d", "trivial_augment": "true"})
    changed = build_config("imagenet", overrides={"model": "resnest50d", "trivial_augment": "true",
                                                  "auto_augment": "false", "random_erasing": "0.25"})
    assert changed.trivial_augment and changed.random_erasing == 0.25
    save_config(changed, tmp_path / "config.yaml")  # a run's config.yaml reads back the same
    assert build_config(config_file=tmp_path / "config.yaml") == changed
    # on the command line: exit status 2 and the reason, before a run directory exists
    assert cli_main(["train", "--preset", "imagenet", "--model", "resnest50d", "trivial_augment=true",
                     "--output", str(tmp_path / "run")]) == 2
    assert "e.g. auto_augment=false" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_training_runs_with_trivial_augment_and_random_erasing(tmp_path, digits):
    config_file = tmp_path / "recipe.yaml"
    config_file.write_text("trivial_augment: true\nrandom_erasing: 0.5\n")
    config = build_config(config_file=config_file, overrides={
        "data": str(digits), "model": "resnest14d", "output": str(tmp_path / "run"), "epochs": "1",
        "batch_size": "16", "max_steps_per_epoch": "2", "progress": "false"})
    trainer = Trainer(config, Runtime(torch.device("cpu")))
    kinds = [type(step) for step in trainer.train_loader.dataset.transform.transforms]
    assert T.TrivialAugmentWide in kinds and T.RandomErasing in kinds
    record = trainer.fit()
    assert record["epoch"] == 1 and torch.isfinite(torch.tensor(record["train_loss"]))
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "trivial_augment: true" in saved and "random_erasing: 0.5" in saved
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 1

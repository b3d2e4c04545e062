"""Image folders as users have them: odd image modes, broken files and bad layouts."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from splitattn.data import (
    DataError,
    ImageFolderDataset,
    collate_skipping,
    eval_transform,
    prepare_digits,
    train_transform,
)
from splitattn.training import TrainConfig
from splitattn.training.runtime import Runtime
from splitattn.training.trainer import Trainer

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def _write_folder(root, per_class=4, size=20):
    for label, colour in (("cat", (200, 30, 30)), ("dog", (30, 200, 30))):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (size, size), colour).save(folder / f"{i}.png")
    return root


def test_digits_are_a_real_stratified_split(tmp_path):
    root = prepare_digits(tmp_path / "digits")
    train = ImageFolderDataset(root / "train")
    val = ImageFolderDataset(root / "val", class_names=train.class_names)
    assert train.class_names == [str(d) for d in range(10)]
    assert len(train) + len(val) == 1797
    assert 0.18 < len(val) / 1797 < 0.22
    assert not {p.name for p, _ in train.samples} & {p.name for p, _ in val.samples}
    image, label = train[0]
    assert image.mode == "RGB" and image.size == (32, 32) and label == 0
    assert prepare_digits(tmp_path / "digits") == root  # second call reuses the folder


def test_digits_written_by_three_processes_at_once_are_whole(tmp_path):
    """Three runs started together all get the full data set; an interrupted write is redone."""
    root = tmp_path / "digits"
    (root / "train" / "3").mkdir(parents=True)  # what an interrupted in-place write left behind
    (root / "train" / "3" / "9999.png").write_bytes(b"half a png")  # not an index of the 1,797
    code = f"from splitattn.data import prepare_digits; prepare_digits({str(root)!r})"
    writers = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    images = sorted(root.rglob("*.png"))
    assert len(images) == 1797
    for path in images[::97]:
        with Image.open(path) as image:
            assert image.size == (32, 32)
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]  # no partial copies left


def test_grayscale_cmyk_rgba_and_palette_images_become_rgb(tmp_path):
    folder = tmp_path / "data" / "mixed"
    folder.mkdir(parents=True)
    Image.new("L", (8, 8), 128).save(folder / "grey.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(folder / "transparent.png")
    Image.new("P", (8, 8), 3).save(folder / "palette.gif")
    dataset = ImageFolderDataset(tmp_path / "data")
    images = {path.name: dataset[i][0] for i, (path, _) in enumerate(dataset.samples)}
    assert all(image.mode == "RGB" for image in images.values())
    assert images["transparent.png"].getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    red, green, blue = images["cmyk.jpg"].getpixel((0, 0))
    assert red > 200 and green < 60 and blue < 60


def test_broken_images_are_skipped_and_counted(tmp_path):
    root = _write_folder(tmp_path / "data")
    (root / "cat" / "empty.png").touch()
    (root / "cat" / "garbage.jpg").write_bytes(b"this is not a jpeg")
    good = (root / "dog" / "0.png").read_bytes()
    (root / "dog" / "truncated.png").write_bytes(good[: len(good) // 2])
    dataset = ImageFolderDataset(root, eval_transform(16, MEAN, STD, crop_pct=1.0))
    assert dataset.skipped_empty == 1
    assert len(dataset) == 10  # 8 good + garbage + truncated; the empty file never enters
    batches = list(DataLoader(dataset, batch_size=5, collate_fn=collate_skipping))
    assert sum(skipped for _, _, skipped in batches) == 2
    assert sum(len(labels) for _, labels, _ in batches) == 8
    assert all(images.shape[1:] == (3, 16, 16) for images, labels, _ in batches if len(labels))


def test_missing_empty_and_imageless_folders_fail_before_training(tmp_path):
    with pytest.raises(DataError, match=r"'.*nowhere' does not exist"):
        ImageFolderDataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no class folders; expected"):
        ImageFolderDataset(tmp_path / "empty")
    root = _write_folder(tmp_path / "data")
    (root / "bird").mkdir()
    (root / "bird" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"class folder\(s\) \['bird'\] .* contain no images"):
        ImageFolderDataset(root)


def test_validation_classes_must_match_training_classes(tmp_path):
    train = ImageFolderDataset(_write_folder(tmp_path / "train"))
    val_root = _write_folder(tmp_path / "val")
    (val_root / "dog").rename(val_root / "horse")
    with pytest.raises(DataError, match=r"missing \['dog'\], extra \['horse'\]"):
        ImageFolderDataset(val_root, class_names=train.class_names)


def test_trainer_rejects_bad_data_before_the_first_step(tmp_path):
    root = tmp_path / "data"
    _write_folder(root / "train")
    (root / "val").mkdir(parents=True)
    config = TrainConfig(data=str(root), model="resnet18", output=str(tmp_path / "run"), progress=False)
    with pytest.raises(DataError, match="has no class folders"):
        Trainer(config, Runtime(torch.device("cpu")))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("options", [
    {"random_resized_crop": True, "hflip": True, "auto_augment": True},
    {"random_resized_crop": True, "rand_augment": True},
    {"random_resized_crop": False},
])
def test_train_transforms_give_normalised_tensors_of_the_crop_size(options):
    mean, std = (0.2, 0.4, 0.6), (0.1, 0.2, 0.3)
    transform = train_transform(24, mean, std, **options)
    out = transform(Image.new("RGB", (40, 30), (10, 200, 90)))
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32
    pixels = out * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6, "un-normalised, the values are pixels again"
    if not any(options.get(k) for k in ("auto_augment", "rand_augment")):  # no colour changes: exact pixels
        torch.testing.assert_close(pixels[:, 12, 12], torch.tensor([10, 200, 90]) / 255.0)

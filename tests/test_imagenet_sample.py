"""``python -m splitattn.data.imagenet_sample``: the README's stand-in for ImageNet's evaluation sets.

Every layout it writes must label the same images the same way, or the README's example would
show one protocol disagreeing with another. The network is made to answer "stingray" for every
image, so each layout's top-1 is the share of stingray images it labels as such: 3 of 12, and for
ReaL 2 of the 11 images with a label set (the sample leaves one stingray image without one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from splitattn import create_model
from splitattn.cli import main as cli_main
from splitattn.data.imagenet_sample import main as sample_main
from splitattn.data.imagenet_sample import sample_synsets, write_imagenet_sample
from splitattn.models.imagenet import class_subset, imagenet_classes


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_imagenet_sample(tmp_path_factory.mktemp("sample") / "imagenet", classes=4, per_class=3, size=40)


@pytest.fixture(scope="module")
def stingray_weights(tmp_path_factory) -> Path:
    model = create_model("resnest14d")
    with torch.no_grad():
        model.fc.bias[imagenet_classes().index_of("n01498041")] = 100.0  # stingray, whatever the image
    path = tmp_path_factory.mktemp("weights") / "stingray.pth"
    torch.save(model.state_dict(), path)
    return path


def _eval(capsys, weights: Path, *args: str) -> dict:
    capsys.readouterr()
    assert cli_main(["eval", "--checkpoint", str(weights), "--model", "resnest14d", "--image-size", "32",
                     "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_sample_classes_are_in_imagenet_a_and_r_and_spread_out():
    picked = sample_synsets(4)
    assert len(set(picked)) == 4 and picked == sorted(picked)
    assert set(picked) <= set(class_subset("imagenet-a")) & set(class_subset("imagenet-r"))
    with pytest.raises(ValueError, match="between 1 and"):
        sample_synsets(0)


def test_every_layout_of_the_sample_labels_the_images_alike(sample, stingray_weights, capsys, tmp_path):
    layouts = {
        "val": _eval(capsys, stingray_weights, "--data", str(sample / "val")),
        "v2": _eval(capsys, stingray_weights, "--data", str(sample / "v2")),
        "flat": _eval(capsys, stingray_weights, "--data", str(sample / "flat"),
                      "--labels", str(sample / "flat" / "LOC_val_solution.csv")),
        "subset": _eval(capsys, stingray_weights, "--data", str(sample / "val"), "--class-subset", "imagenet-a"),
    }
    assert cli_main(["write-shards", str(sample), str(tmp_path / "shards"), "--splits", "val"]) == 0
    layouts["shards"] = _eval(capsys, stingray_weights, "--data", str(tmp_path / "shards"))
    for name, result in layouts.items():
        assert (result["top1"], result["images"]) == (pytest.approx(25.0), 12), name
    assert layouts["val"]["layout"] == "synsets" and layouts["v2"]["layout"] == "indices"
    real = _eval(capsys, stingray_weights, "--data", str(sample / "flat"),
                 "--labels", str(sample / "flat" / "LOC_val_solution.csv"), "--real-labels", str(sample / "real.json"))
    assert real["images"] == 11 and real["top1"] == pytest.approx(100 * 2 / 11)
    assert real["original_top1"] == pytest.approx(25.0)


def test_the_command_writes_every_layout_and_refuses_bad_sizes(tmp_path, capsys):
    sample_main([str(tmp_path / "s"), "--classes", "2", "--per-class", "1", "--size", "16"])
    assert "wrote 2 images" in capsys.readouterr().out
    for folder in ("val", "v2", "flat"):
        assert len(list((tmp_path / "s" / folder).rglob("*.JPEG"))) == 2
    assert len(json.loads((tmp_path / "s" / "real.json").read_text())) == 2
    with pytest.raises(SystemExit):
        sample_main([str(tmp_path / "t"), "--size", "4"])
    assert "size >= 8" in capsys.readouterr().err

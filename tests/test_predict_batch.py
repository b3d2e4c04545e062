"""``splitattn predict`` over folders of images, in batches, to a CSV or JSON-lines file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from splitattn import create_model
from splitattn.cli import main as cli_main
from splitattn.data import DataError, eval_transform, find_images, load_rgb
from splitattn.models.registry import input_cfg
from splitattn.training.prediction_files import output_format

from .reference import randomize_

CLASSES = ["cat", "dog", "fox", "owl"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, photos) -> Path:
    """A checkpoint as ``splitattn train`` writes it: weights, the model's name, class names and the
    32 px crop. The classifier is set on the photos' standardised features, so that the photos get
    different classes with clear margins (a random head gives every image the same answer)."""
    torch.manual_seed(0)
    model = randomize_(create_model("resnest14d", num_classes=len(CLASSES), zero_init_last=False)).eval()
    cfg = input_cfg("resnest14d")
    transform = eval_transform(32, cfg.mean, cfg.std, 1.0, "bilinear")
    batch = torch.stack([transform(load_rgb(f)) for f in find_images([photos])])
    features = []
    head = model.get_classifier()
    hook = head.register_forward_hook(lambda _module, inputs, _output: features.append(inputs[0]))
    with torch.no_grad():
        model(batch)
        hook.remove()
        mean, spread = features[0].mean(0), features[0].std(0) + 1e-6
        weight = torch.randn(len(CLASSES), mean.numel()) / spread / mean.numel() ** 0.5
        head.weight.copy_(weight)
        head.bias.copy_(-weight @ mean)
    path = tmp_path_factory.mktemp("run") / "best.pth"
    torch.save({"model": model.state_dict(), "model_name": "resnest14d", "class_names": CLASSES,
                "config": {"image_size": 32, "crop_pct": 1.0, "interpolation": "bilinear"}}, path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Seven images of different sizes in nested folders, plus a file that is no image."""
    root = tmp_path_factory.mktemp("photos")
    gen = torch.Generator().manual_seed(1)
    for index, relative in enumerate(["a.png", "b.jpg", "sub/c.png", "sub/d.webp", "sub/deeper/e.png",
                                      "f.bmp", "g.png"]):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (20 + 3 * index, 40, 3), generator=gen, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(path)
    (root / "notes.txt").write_text("not an image, and not picked up from a folder")
    return root


def _single(checkpoint: Path, image: Path, capsys) -> list[dict]:
    assert cli_main(["predict", str(image), "--checkpoint", str(checkpoint), "--json", "--top-k", "3"]) == 0
    return json.loads(capsys.readouterr().out)["predictions"]


def test_folders_are_walked_recursively_and_sorted(photos):
    files = find_images([photos])
    assert [f.relative_to(photos).as_posix() for f in files] == [
        "a.png", "b.jpg", "f.bmp", "g.png", "sub/c.png", "sub/d.webp", "sub/deeper/e.png"]
    # files named explicitly keep their order, and come with a folder's files
    assert find_images([photos / "g.png", photos / "sub"])[:2] == [photos / "g.png", photos / "sub" / "c.png"]
    with pytest.raises(DataError, match=r"no such image file or folder: '.*missing.png'"):
        find_images([photos / "missing.png"])
    (photos.parent / "empty").mkdir(exist_ok=True)
    with pytest.raises(DataError, match=r"holds no image files \(looked for .*\.jpg"):
        find_images([photos.parent / "empty"])


def test_batch_csv_has_a_row_per_image_with_the_single_image_top_k(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "results" / "predictions.csv"
    assert cli_main(["predict", str(photos), "--checkpoint", str(checkpoint), "--out", str(out),
                     "--top-k", "3", "--batch-size", "3", "--no-progress"]) == 0
    assert "wrote 7 prediction(s)" in capsys.readouterr().out
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(row["image"]) for row in rows] == find_images([photos])
    assert list(rows[0]) == ["image", "error", "class_1", "index_1", "probability_1", "class_2", "index_2",
                             "probability_2", "class_3", "index_3", "probability_3"]
    tops = set()
    for row in rows[:3] + rows[-1:]:  # a batch of three, and the last batch, of one image
        single = _single(checkpoint, Path(row["image"]), capsys)
        assert row["error"] == ""
        assert [row[f"class_{r}"] for r in (1, 2, 3)] == [p["class"] for p in single]
        assert [int(row[f"index_{r}"]) for r in (1, 2, 3)] == [CLASSES.index(p["class"]) for p in single]
        for rank, prediction in enumerate(single, start=1):
            assert float(row[f"probability_{rank}"]) == pytest.approx(prediction["probability"], abs=1e-5)
        tops.add(row["class_1"])
    assert len(tops) > 1, "the images are told apart: a constant answer would prove nothing"


def test_batches_give_the_probabilities_of_single_images(checkpoint, photos, tmp_path, capsys):
    """JSON lines carry every probability unrounded: batched (4, then 3) equals one by one."""
    out = tmp_path / "predictions.jsonl"
    assert cli_main(["predict", str(photos), "--checkpoint", str(checkpoint), "--out", str(out),
                     "--top-k", "4", "--batch-size", "4", "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 7 and all("error" not in record for record in records)
    assert cli_main(["predict", *[r["image"] for r in records], "--checkpoint", str(checkpoint), "--json",
                     "--top-k", "4", "--batch-size", "1"]) == 0
    singles = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for batched, single in zip(records, singles, strict=True):
        assert batched["image"] == single["image"]
        by_class = {p["class"]: p["probability"] for p in single["predictions"]}
        for prediction in batched["predictions"]:
            assert prediction["probability"] == pytest.approx(by_class[prediction["class"]], rel=1e-4, abs=1e-6)
        assert sum(by_class.values()) == pytest.approx(1.0, abs=1e-5)


def test_unreadable_images_are_listed_and_the_run_finishes(checkpoint, photos, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "truncated.png").write_bytes((photos / "a.png").read_bytes()[:60])
    (broken / "empty.jpg").write_bytes(b"")
    out = tmp_path / "predictions.csv"
    code = cli_main(["predict", str(photos / "a.png"), str(broken), str(photos / "notes.txt"),
                     "--checkpoint", str(checkpoint), "--out", str(out), "--top-k", "2", "--no-progress"])
    assert code == 1, "some images could not be read: the exit status says so"
    err = capsys.readouterr().err
    assert "3 of 4 image(s) could not be read" in err and "truncated.png" in err and "notes.txt" in err
    with out.open(newline="") as handle:
        rows = {Path(row["image"]).name: row for row in csv.DictReader(handle)}
    assert list(rows) == ["a.png", "empty.jpg", "truncated.png", "notes.txt"]
    assert rows["a.png"]["error"] == "" and rows["a.png"]["class_1"] in CLASSES
    assert rows["empty.jpg"]["error"] == "zero-byte file" and rows["empty.jpg"]["class_1"] == ""
    assert rows["truncated.png"]["error"] and rows["notes.txt"]["error"].startswith("UnidentifiedImageError")
    # on stdout as well: text names the reason, JSON lines carry an "error" field
    assert cli_main(["predict", str(broken / "empty.jpg"), "--checkpoint", str(checkpoint)]) == 1
    assert "unreadable: zero-byte file" in capsys.readouterr().out
    assert cli_main(["predict", str(broken / "empty.jpg"), "--checkpoint", str(checkpoint), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"image": str(broken / "empty.jpg"), "predictions": [],
                                                   "error": "zero-byte file"}


def test_text_output_lists_the_top_classes(checkpoint, photos, capsys):
    assert cli_main(["predict", str(photos / "a.png"), "--checkpoint", str(checkpoint), "--top-k", "9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(photos / "a.png") and len(lines) == 1 + len(CLASSES)  # top-k capped at the classes
    assert lines[1].startswith("  1. ") and lines[1].endswith("%")
    assert sorted(line.split()[1] for line in lines[1:]) == sorted(CLASSES)


def test_unknown_suffix_is_refused_before_any_work(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "predictions.json"
    assert cli_main(["predict", str(photos), "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'.json'" in err and ".csv" in err and ".jsonl" in err and "did you mean 'predictions.jsonl'" in err
    assert not out.exists()
    with pytest.raises(ValueError, match=r"suffix '\(none\)'.*known are \.csv"):
        output_format("predictions")
    assert cli_main(["predict", str(photos), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "p.csv"),
                     "--json"]) == 2
    assert "--json prints to stdout" in capsys.readouterr().err


def test_an_interrupted_run_leaves_no_file(checkpoint, photos, tmp_path, monkeypatch):
    """Written through a temporary file: a run that fails half-way leaves neither a partial nor a temporary file."""
    from splitattn.training import prediction_files

    calls = []

    class Failing(prediction_files.CsvWriter):
        def write(self, prediction):
            calls.append(prediction)
            if len(calls) == 3:
                raise OSError("disk full")
            super().write(prediction)

    fmt = prediction_files.OUTPUT_FORMATS[".csv"]
    monkeypatch.setitem(prediction_files.OUTPUT_FORMATS, ".csv",
                        prediction_files.OutputFormat(fmt.suffix, fmt.description, Failing))
    out = tmp_path / "predictions.csv"
    # Not bad input but the machine's failure: not one of the package's errors, so it keeps its traceback.
    with pytest.raises(OSError, match="disk full"):
        cli_main(["predict", str(photos), "--checkpoint", str(checkpoint), "--out", str(out),
                  "--batch-size", "2", "--no-progress"])
    assert list(tmp_path.iterdir()) == []

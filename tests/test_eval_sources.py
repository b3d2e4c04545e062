"""``splitattn eval --data`` of shards and Hugging Face datasets scores as the same images in a folder.

The sets are the coloured squares of ``test_data_sources`` (written by the test, nothing from the
network; ``datasets`` offline). The model is a random one with every BN randomised, so each image
gets its own ranking and a label mapped to the wrong class would change the per-class table.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import torch

from splitattn import create_model
from splitattn.cli import main as cli_main
from splitattn.data import eval_transform, load_rgb
from splitattn.models.imagenet import imagenet_classes

from .reference import randomize_
from .test_data_sources import CLASSES, _square, _write_uneven_shards
from .test_data_sources import folder as folder  # fixtures, used by name below
from .test_data_sources import hf_offline as hf_offline
from .test_data_sources import shards as shards

SIZE = "32"
MODEL_ORDER = ["red", "green", "blue"]  # the folders', shards' and dataset's are sorted: blue, green, red
SYNSETS = ("n01530575", "n01531178", "n01532829")  # brambling, goldfinch, house finch: outputs 10, 11, 12


def _evaluate(capsys, *args: str, tmp_path: Path) -> tuple[dict, list[dict]]:
    """The --json result and the --per-class rows of one ``splitattn eval``."""
    table = tmp_path / f"per-class-{len(list(tmp_path.glob('per-class-*')))}.csv"
    capsys.readouterr()
    assert cli_main(["eval", *args, "--image-size", SIZE, "--json", "--per-class", str(table)]) == 0
    result = json.loads(capsys.readouterr().out)
    with table.open(newline="") as handle:
        return result, sorted(csv.DictReader(handle), key=lambda row: row["class"])


def _scores(result: dict) -> tuple:
    return result["top1"], result["top5"], result["images"], result["skipped"]


@pytest.fixture(scope="module")
def checkpoint(folder, tmp_path_factory) -> Path:
    """A 3-class model that tells the colours apart (its head fitted to the random backbone's features of
    the training squares), its classes in another order than the folders'."""
    torch.manual_seed(0)
    model = randomize_(create_model("resnest14d", num_classes=len(CLASSES), zero_init_last=False)).eval()
    transform = eval_transform(int(SIZE), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # squares: any crop
    images = sorted((folder / "train").glob("*/*.png"))
    with torch.no_grad():
        features = model.forward_head(model.forward_features(torch.stack([transform(load_rgb(p)) for p in images])),
                                      pre_logits=True)
    labels = torch.tensor([MODEL_ORDER.index(p.parent.name) for p in images])
    mean, scale = features.mean(0), features.std(0) + 1e-6
    features = (features - mean) / scale
    head = torch.nn.Linear(features.shape[1], len(CLASSES))
    optimizer = torch.optim.Adam(head.parameters(), lr=0.01)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(head(features), labels).backward()
        optimizer.step()
    with torch.no_grad():  # the standardisation folded into the model's own head
        model.fc.weight.copy_(head.weight / scale)
        model.fc.bias.copy_(head.bias - (head.weight / scale) @ mean)
    path = tmp_path_factory.mktemp("model") / "run.pth"
    torch.save({"model_name": "resnest14d", "class_names": MODEL_ORDER, "model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory) -> Path:
    """A bare 1000-class weights file: it gets ImageNet's classes (named "brambling", synset n01530575)."""
    model = randomize_(create_model("resnest14d", zero_init_last=False), seed=1).eval()
    path = tmp_path_factory.mktemp("imagenet") / "resnest14d.pth"
    torch.save(model.state_dict(), path)
    return path


def test_shards_and_a_saved_dataset_score_as_the_same_folder(folder, shards, checkpoint, tmp_path,
                                                             hf_offline, capsys):
    import datasets

    datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(hf_offline)).save_to_disk(
        str(tmp_path / "saved"))
    model = ("--checkpoint", str(checkpoint))
    on_folder, table = _evaluate(capsys, *model, "--data", str(folder / "val"), tmp_path=tmp_path)
    assert on_folder["images"] == 24 and on_folder["layout"] == "names" and on_folder["top1"] > 60
    assert [row["class"] for row in table] == sorted(CLASSES)
    sources = {"root with train/ and val/": str(folder), "shards": str(shards),
               "shard pattern": str(shards / "val-000000.tar"), "saved dataset": f"hf:{tmp_path / 'saved'}"}
    for name, data in sources.items():
        result, rows = _evaluate(capsys, *model, "--data", data, tmp_path=tmp_path)
        assert _scores(result) == _scores(on_folder), name
        assert rows == table, name  # each class's images, top-1 and most confused class
        assert result["layout"] == "names"


def test_synset_named_shards_are_scored_by_synset(imagenet_weights, tmp_path, capsys):
    rng = random.Random(2)
    for synset, colour in zip(SYNSETS, CLASSES, strict=True):
        (tmp_path / "imgs" / "val" / synset).mkdir(parents=True)
        for i in range(4):
            _square(colour, rng).save(tmp_path / "imgs" / "val" / synset / f"{i}.png")
    assert cli_main(["write-shards", str(tmp_path / "imgs"), str(tmp_path / "shards"), "--splits", "val"]) == 0
    info = json.loads((tmp_path / "shards" / "_info.json").read_text())
    assert info["class_names"] == list(SYNSETS)
    model = ("--checkpoint", str(imagenet_weights), "--model", "resnest14d")
    on_folder, table = _evaluate(capsys, *model, "--data", str(tmp_path / "imgs" / "val"), tmp_path=tmp_path)
    on_shards, rows = _evaluate(capsys, *model, "--data", str(tmp_path / "shards"), tmp_path=tmp_path)
    assert on_folder["layout"] == on_shards["layout"] == "synsets"
    assert _scores(on_shards) == _scores(on_folder) and on_shards["images"] == 12
    names = imagenet_classes().names
    assert sorted(row["class"] for row in rows) == sorted(names[10:13])  # not outputs 0, 1, 2 (tench ...)
    assert rows == table
    # classes named by their words, as Hugging Face's imagenet-1k names them: the same scores
    imagenet = imagenet_classes()
    info["class_names"] = [imagenet.lemmas[imagenet.index_of(synset)] for synset in SYNSETS]
    (tmp_path / "shards" / "_info.json").write_text(json.dumps(info))
    by_words, word_rows = _evaluate(capsys, *model, "--data", str(tmp_path / "shards"), tmp_path=tmp_path)
    assert by_words["layout"] == "lemmas" and _scores(by_words) == _scores(on_folder) and word_rows == table
    # --layout synsets cannot read words: refused, naming them
    capsys.readouterr()
    assert cli_main(["eval", *model, "--data", str(tmp_path / "shards"), "--image-size", SIZE,
                     "--layout", "synsets"]) == 2
    error = capsys.readouterr().err
    assert info["class_names"][0] in error and "labels CSV" not in error  # a CSV labels folders only


def test_index_named_shards_and_the_split_flag(imagenet_weights, tmp_path, capsys):
    _write_uneven_shards(tmp_path, lengths=(9, 4), broken={3: "image"})  # class_names blue, green, red
    info = json.loads((tmp_path / "_info.json").read_text())
    info.pop("class_names")  # labels are then output indices 0, 1, 2 of the model
    (tmp_path / "_info.json").write_text(json.dumps(info))
    model = ("--checkpoint", str(imagenet_weights), "--model", "resnest14d")
    result, rows = _evaluate(capsys, *model, "--data", str(tmp_path), "--split", "train", tmp_path=tmp_path)
    assert result["layout"] == "indices" and result["images"] == 12 and result["skipped"] == 1
    assert sorted(row["class"] for row in rows) == sorted(imagenet_classes().names[:3])
    (unreadable,) = result["unreadable"]
    assert unreadable["image"].endswith("train-000000.tar:s0-003.png")
    assert unreadable["reason"].startswith("UnidentifiedImageError")
    validation, _ = _evaluate(capsys, *model, "--data", str(tmp_path), tmp_path=tmp_path)
    assert validation["images"] == 12 and validation["skipped"] == 0  # the info file's validation split
    capsys.readouterr()
    assert cli_main(["eval", *model, "--data", str(tmp_path), "--image-size", SIZE, "--split", "tarin"]) == 2
    assert "did you mean 'train'" in capsys.readouterr().err


def test_label_files_are_for_folders_only(shards, checkpoint, tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("a.png,red\n")
    capsys.readouterr()
    assert cli_main(["eval", "--checkpoint", str(checkpoint), "--data", str(shards), "--labels",
                     str(tmp_path / "labels.csv")]) == 2
    error = capsys.readouterr().err
    assert "--labels" in error and "folder" in error


def test_eval_names_unreadable_images_of_a_folder(folder, checkpoint, tmp_path, capsys):
    val = tmp_path / "val"
    for name in CLASSES:
        (val / name).mkdir(parents=True)
        for image in sorted((folder / "val" / name).iterdir())[:2]:
            (val / name / image.name).write_bytes(image.read_bytes())
    (val / "red" / "broken.png").write_bytes(b"\x89PNG not an image")
    (val / "blue" / "empty.png").write_bytes(b"")
    (val / "green" / ".hidden.png").write_bytes(b"not looked at")
    capsys.readouterr()
    assert cli_main(["eval", "--checkpoint", str(checkpoint), "--image-size", SIZE, "--data", str(val),
                     "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["images"] == 6 and result["skipped"] == 2
    reasons = {Path(entry["image"]).name: entry["reason"] for entry in result["unreadable"]}
    assert reasons["empty.png"] == "zero-byte file" and reasons["broken.png"].startswith("UnidentifiedImageError")
    assert "broken.png (UnidentifiedImageError" in captured.err and "empty.png (zero-byte file)" in captured.err

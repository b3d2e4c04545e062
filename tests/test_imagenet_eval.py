"""ImageNet-grade ``splitattn eval``: the shipped class list, and eval on generated folders in each
ImageNet layout agreeing with timm's own protocol (its class maps, index files, ReaL scorer and
eval transform) on the same weights.

A network with random weights is right on ~0% of any images, which no wrong label mapping would
change. So the network's classifier is set to tell the generated images apart, each image is
placed in a folder chosen from its own reference ranking (its top-1 for half, its second class for
a quarter, its tenth for the rest), and a right mapping gives top-1 50% and top-5 75%, while a
mapping by folder order gives something else.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import ImageNetInfo, RealLabelsImagenet, create_dataset, create_transform, resolve_data_config
from timm.utils import accuracy

from splitattn import create_model
from splitattn.cli import main as cli_main
from splitattn.models import get_model_entry
from splitattn.models.classes import UnknownClassError
from splitattn.models.imagenet import CLASS_SUBSETS, class_subset, imagenet_classes
from splitattn.models.published import PublishedWeights, WeightSource
from splitattn.models.registry import _REGISTRY
from splitattn.sharing import save_pretrained
from splitattn.training.inference import load_trained
from splitattn.weights import sha256_of

from .reference import randomize_, reference_model

TIMM_INFO = Path(timm.data.__file__).parent / "_info"
SIZE = 48
SIDE = 54  # floor(48 / 0.875): timm's resize (PIL) and ours (tensors) leave such images as they are
RANK_OF_LABEL = (0, 1, 0, 9)  # image i is placed by its (i % 4)-th pick: top-1 50%, top-5 75%
N_IMAGES = 24


def _pattern(rng: np.random.Generator, width: int) -> Image.Image:
    yy, xx = np.mgrid[0:SIDE, 0:width]
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    freq, phase, tilt = rng.uniform(0.05, 0.4), rng.uniform(0, 6), rng.uniform(-1, 1)
    t = (np.sin(xx * freq + phase + yy * freq * tilt)[..., None] + 1) / 2
    return Image.fromarray((c0 * t + c1 * (1 - t)).clip(0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [_pattern(rng, SIDE + 5 * (i % 3)) for i in range(N_IMAGES)]


@pytest.fixture(scope="module")
def net(images) -> torch.nn.Module:
    """timm's resnest14d, random, with a classifier that ranks the generated images differently."""
    torch.manual_seed(0)
    model = randomize_(reference_model("resnest14d")).eval()
    x = torch.stack([reference_transform(model)(image) for image in images])
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True)
        mean, std = features.mean(0), features.std(0) + 1e-6
        weight = torch.randn(1000, features.shape[1], generator=torch.Generator().manual_seed(1)) / std
        model.fc.weight.copy_(weight)
        model.fc.bias.copy_(-weight @ mean)
    return model


def reference_transform(model: torch.nn.Module):
    """timm's eval transform for the model at SIZE px (its crop_pct and interpolation)."""
    return create_transform(**resolve_data_config({"input_size": (3, SIZE, SIZE)}, model=model))


@pytest.fixture(scope="module")
def logits(net, images) -> torch.Tensor:
    with torch.no_grad():
        return net(torch.stack([reference_transform(net)(image) for image in images]))


@pytest.fixture(scope="module")
def weights_file(net, tmp_path_factory) -> Path:
    """The network as timm publishes weights: a bare state dict in timm's layout, no class names."""
    path = tmp_path_factory.mktemp("weights") / "resnest14d_timm.pth"
    torch.save(net.state_dict(), path)
    return path


def placed(logits: torch.Tensor, among: list[int] | None = None) -> list[int]:
    """Each image's label: a class of its own ranking (only ``among`` these classes where given)."""
    ranked = logits[:, among].topk(10).indices if among else logits.topk(10).indices
    picks = [int(row[RANK_OF_LABEL[i % 4]]) for i, row in enumerate(ranked)]
    return [among[p] for p in picks] if among else picks


def write_folders(root: Path, images: list[Image.Image], folders: list[str]) -> Path:
    for i, (image, folder) in enumerate(zip(images, folders, strict=True)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        image.save(root / folder / f"img{i:03d}.png")
    return root


def timm_scores(net, root: Path, class_map, valid: list[int] | None = None) -> dict[str, float]:
    """timm's validate.py protocol: its dataset with ``class_map``, its transform, logits[:, valid], accuracy."""
    dataset = create_dataset("", root=str(root), class_map=class_map, transform=reference_transform(net))
    x, target = next(iter(torch.utils.data.DataLoader(dataset, batch_size=len(dataset))))
    with torch.no_grad():
        output = net(x)
    if valid is not None:
        output = output[:, valid]
    top1, top5 = accuracy(output, target, topk=(1, 5))
    return {"top1": float(top1), "top5": float(top5), "images": len(dataset)}


def evaluate(capsys, weights_file: Path, *args: str) -> dict:
    capsys.readouterr()
    code = cli_main(["eval", "--checkpoint", str(weights_file), "--model", "resnest14d", "--image-size", str(SIZE),
                     "--json", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def eval_error(capsys, weights_file: Path, *args: str) -> str:
    capsys.readouterr()
    assert cli_main(["eval", "--checkpoint", str(weights_file), "--model", "resnest14d", "--image-size", str(SIZE),
                     *args]) == 2
    return capsys.readouterr().err


def folder_order_top1(logits: torch.Tensor, folders: list[str]) -> float:
    """What a mapping of sorted folders to 0, 1, 2 ... would score: the mistake the tests must catch."""
    order = sorted(set(folders))
    labels = torch.tensor([order.index(f) for f in folders])
    return float(accuracy(logits, labels, topk=(1,))[0])


# -- the class list ------------------------------------------------------------------------------------------


def test_shipped_classes_are_timms_imagenet_info_and_subsets():
    classes, info = imagenet_classes(), ImageNetInfo()
    assert list(classes.synsets) == info.label_names()
    assert list(classes.lemmas) == [info.index_to_description(i) for i in range(1000)]
    assert classes.names[876] == "tub" and classes.synsets[876] == "n04493381" and classes.lemmas[876] == "tub, vat"
    for name, stem in (("imagenet-a", "imagenet_a"), ("imagenet-r", "imagenet_r")):
        expected = [int(line) for line in (TIMM_INFO / f"{stem}_indices.txt").read_text().split()]
        assert list(class_subset(name)) == expected and len(expected) == 200
    assert set(CLASS_SUBSETS) == {"imagenet-a", "imagenet-r"}


def test_a_class_is_found_by_synset_name_or_index_and_an_ambiguous_name_names_both():
    classes = imagenet_classes()
    assert classes.index_of("n04493381") == classes.index_of("tub") == classes.index_of("876") == 876
    with pytest.raises(UnknownClassError, match=r"'crane' is ambiguous: n02012849 \(index 134\), n03126707"):
        classes.index_of("crane")
    with pytest.raises(UnknownClassError, match="Did you mean: 'tub'"):
        classes.index_of("tubb")
    with pytest.raises(UnknownClassError, match="out of range"):
        classes.index_of(1000)
    with pytest.raises(ValueError, match="Did you mean: imagenet-a"):
        class_subset("imagenet_a")


def test_models_with_published_weights_name_their_classes_and_other_heads_do_not():
    cfg = create_model("resnest14d").pretrained_cfg
    assert cfg["label_names"][876] == "tub" and cfg["label_synsets"][876] == "n04493381"
    assert "label_names" not in create_model("resnest14d", num_classes=10).pretrained_cfg
    model = create_model("resnest14d")
    model.reset_classifier(10)
    assert "label_names" not in model.pretrained_cfg and "label_synsets" not in model.pretrained_cfg


def test_a_bare_1000_class_file_gets_imagenet_classes_and_timms_preprocessing(net, images, weights_file):
    trained = load_trained(weights_file, "resnest14d", image_size=SIZE)
    assert trained.class_names[876] == "tub" and trained.class_synsets[0] == "n01440764"
    # Resize to floor(48 / 0.875) = 54 px as timm does (rounding would make it 55 and change every pixel).
    for image in images[:3]:
        torch.testing.assert_close(trained.transform(image), reference_transform(net)(image), rtol=0, atol=1e-6)


# -- eval against timm's protocol -------------------------------------------------------------------------


def test_synset_folders_of_a_subset_of_classes_score_as_timm(net, logits, images, weights_file, tmp_path, capsys):
    synsets = imagenet_classes().synsets
    folders = [synsets[label] for label in placed(logits)]
    root = write_folders(tmp_path / "val", images, folders)
    expected = timm_scores(net, root, str(TIMM_INFO / "imagenet_synsets.txt"))
    assert (expected["top1"], expected["top5"]) == (50.0, 75.0)
    assert folder_order_top1(logits, folders) != 50.0
    result = evaluate(capsys, weights_file, "--data", str(root))
    assert result["layout"] == "synsets" and result["images"] == N_IMAGES
    assert result["top1"] == pytest.approx(expected["top1"]) and result["top5"] == pytest.approx(expected["top5"])
    assert (result["crop_pct"], result["interpolation"]) == (0.875, "bilinear")


def test_v2_numbered_folders_are_class_indices(net, logits, images, weights_file, tmp_path, capsys):
    folders = [str(label) for label in placed(logits)]
    root = write_folders(tmp_path / "v2", images, folders)
    expected = timm_scores(net, root, {str(i): i for i in range(1000)})
    assert folder_order_top1(logits, folders) != expected["top1"]
    result = evaluate(capsys, weights_file, "--data", str(root))
    assert result["layout"] == "indices"
    assert (result["top1"], result["top5"], result["images"]) == pytest.approx(
        (expected["top1"], expected["top5"], expected["images"]))


@pytest.mark.parametrize("subset", ["imagenet-a", "imagenet-r"])
def test_a_and_r_rank_only_their_200_classes(subset, net, logits, images, weights_file, tmp_path, capsys):
    stem = subset.replace("-", "_")
    valid = [int(line) for line in (TIMM_INFO / f"{stem}_indices.txt").read_text().split()]
    synsets = imagenet_classes().synsets
    root = write_folders(tmp_path / stem, images, [synsets[label] for label in placed(logits, valid)])
    expected = timm_scores(net, root, str(TIMM_INFO / f"{stem}_synsets.txt"), valid)
    assert (expected["top1"], expected["top5"]) == (50.0, 75.0)
    result = evaluate(capsys, weights_file, "--data", str(root), "--class-subset", subset)
    assert (result["top1"], result["top5"], result["images"]) == pytest.approx((50.0, 75.0, N_IMAGES))
    unrestricted = evaluate(capsys, weights_file, "--data", str(root))
    assert unrestricted["top1"] < 50.0  # over all 1,000 classes other classes outrank the placed ones


def real_sets(logits: torch.Tensor) -> list[list[int]]:
    """ReaL label sets: the top-1 with another class, the second alone, none (left out), a miss."""
    ranked = logits.topk(10).indices.tolist()
    return [[[r[0], r[9]], [r[1]], [], [r[9]]][i % 4] for i, r in enumerate(ranked)]


def test_real_labels_on_a_flat_folder_score_as_timms_real_scorer(net, logits, images, weights_file, tmp_path,
                                                                 capsys):
    root = tmp_path / "val_flat"
    root.mkdir()
    for i, image in enumerate(images):
        image.save(root / f"ILSVRC2012_val_{i + 1:08d}.JPEG", format="PNG")
    real_json = tmp_path / "real.json"
    real_json.write_text(json.dumps(real_sets(logits)))
    dataset = create_dataset("", root=str(root), transform=reference_transform(net))
    scorer = RealLabelsImagenet(dataset.filenames(basename=True), real_json=str(real_json))
    with torch.no_grad():
        scorer.add_result(net(torch.stack([dataset[i][0] for i in range(len(dataset))])))
    result = evaluate(capsys, weights_file, "--data", str(root), "--real-labels", str(real_json))
    assert (result["top1"], result["top5"]) == pytest.approx((scorer.get_accuracy(1), scorer.get_accuracy(5)))
    assert (result["images"], result["no_real_label"]) == (18, 6) and result["top1"] == pytest.approx(100 * 6 / 18)


def test_real_labels_on_synset_folders_also_report_the_folders_labels(logits, images, weights_file, tmp_path,
                                                                       capsys):
    synsets = imagenet_classes().synsets
    root = tmp_path / "val"
    for i, (image, label) in enumerate(zip(images, placed(logits), strict=True)):
        (root / synsets[label]).mkdir(parents=True, exist_ok=True)
        image.save(root / synsets[label] / f"ILSVRC2012_val_{i + 1:08d}.png")
    real_json = tmp_path / "real.json"
    real_json.write_text(json.dumps(real_sets(logits)))
    result = evaluate(capsys, weights_file, "--data", str(root), "--real-labels", str(real_json))
    assert result["top1"] == pytest.approx(100 * 6 / 18) and result["images"] == 18
    assert (result["original_top1"], result["original_top5"]) == pytest.approx((50.0, 75.0))


def test_a_flat_folder_with_a_labels_csv(logits, images, weights_file, tmp_path, capsys):
    info, labels = ImageNetInfo(), placed(logits)
    root = tmp_path / "flat"
    root.mkdir()
    rows = [["ImageId", "Label"]]
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        image.save(root / f"img{i:03d}.png")
        synset = info.index_to_label_name(label)
        name = info.index_to_description(label).split(", ")[0]
        unique = [info.index_to_description(j).split(", ")[0] for j in range(1000)].count(name) == 1
        # synsets (as the archive's LOC_val_solution.csv writes them, with boxes, too), names, indices
        value = [synset, name if unique else synset, str(label), f"{synset} 12 30 140 95"][i % 4]
        rows.append([f"img{i:03d}" if i % 2 else f"img{i:03d}.png", value])  # with and without extension
    rows.append(["gone.png", "n01440764"])
    labels_csv = tmp_path / "labels.csv"
    with labels_csv.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    capsys.readouterr()
    assert cli_main(["eval", "--checkpoint", str(weights_file), "--model", "resnest14d", "--image-size", str(SIZE),
                     "--data", str(root), "--labels", str(labels_csv), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    expected = accuracy(logits, torch.tensor(labels), topk=(1, 5))
    assert (result["top1"], result["top5"]) == pytest.approx((float(expected[0]), float(expected[1])))
    assert result["layout"] == "csv" and result["not_on_disk"] == 1 and "gone.png" in captured.err
    # An image the CSV does not label, and a class that does not exist: errors naming them.
    _pattern(np.random.default_rng(5), SIDE).save(root / "stray.png")
    assert "have no row" in eval_error(capsys, weights_file, "--data", str(root), "--labels", str(labels_csv))
    (root / "stray.png").unlink()
    labels_csv.write_text(labels_csv.read_text().replace("gone.png,n01440764", "gone.png,n0144076"))
    error = eval_error(capsys, weights_file, "--data", str(root), "--labels", str(labels_csv))
    assert f"{labels_csv}:{len(rows)}: unknown class 'n0144076'" in error and "Did you mean: 'n01440764'" in error


def test_per_class_csv_names_each_class_and_its_most_confused_class(logits, images, weights_file, tmp_path, capsys):
    synsets, names = imagenet_classes().synsets, imagenet_classes().names
    labels = placed(logits)
    root = write_folders(tmp_path / "val", images, [synsets[label] for label in labels])
    out = tmp_path / "per_class.csv"
    evaluate(capsys, weights_file, "--data", str(root), "--per-class", str(out))
    rows = {row["synset"]: row for row in csv.DictReader(out.open())}
    assert set(rows) == {synsets[label] for label in labels}
    top1 = logits.argmax(1).tolist()
    label = labels[1]  # placed by its second class: wrong, taken for its top-1
    mine = [i for i, other in enumerate(labels) if other == label]
    row = rows[synsets[label]]
    assert row["class"] == names[label] and int(row["images"]) == len(mine)
    assert float(row["top1"]) == pytest.approx(100 * sum(top1[i] == label for i in mine) / len(mine), abs=0.01)
    assert row["most_confused_with"] in {names[top1[i]] for i in mine if top1[i] != label}


# -- published weights, names, and what is refused -----------------------------------------------------------


@pytest.mark.parametrize("reference", ["timm", "official"])
def test_predict_names_imagenet_classes_for_a_published_layout_file(reference, tmp_path, capsys):
    name = {"timm": "resnest14d", "official": "resnest50"}[reference]
    torch.manual_seed(0)
    model = randomize_(reference_model(name)).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    image_path = tmp_path / "photo.png"
    _pattern(np.random.default_rng(3), 256).resize((256, 256)).save(image_path)  # 224 / 0.875: no resize
    cfg = get_model_entry(name).pretrained_cfg  # timm has no resnest50 (the official layout): its settings
    transform = create_transform(cfg.input_size, crop_pct=cfg.crop_pct, interpolation=cfg.interpolation,
                                 mean=cfg.mean, std=cfg.std)
    with torch.no_grad():
        expected = model(transform(Image.open(image_path).convert("RGB")).unsqueeze(0))[0].topk(3).indices.tolist()
    capsys.readouterr()
    assert cli_main(["predict", str(image_path), "--checkpoint", str(path), "--model", name, "--top-k", "3",
                     "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    names = ImageNetInfo()
    assert [p["class"] for p in predictions] == [names.index_to_description(i).split(", ")[0] for i in expected]
    assert [p["index"] for p in predictions] == expected


@pytest.fixture
def cached_published(weights_file, tmp_path, monkeypatch) -> str:
    """resnest14d's published weights (tag test_in1k: crop 0.95, bicubic) in the cache, their host down."""
    digest = sha256_of(weights_file)
    cache = tmp_path / "cache"
    cache.mkdir()
    filename = f"resnest14d-{digest[:8]}.pth"
    (cache / filename).write_bytes(weights_file.read_bytes())
    monkeypatch.setenv("SPLITATTN_CACHE", str(cache))
    monkeypatch.setenv("SPLITATTN_DOWNLOAD_TIMEOUT", "1")
    source = WeightSource(f"http://127.0.0.1:9/{filename}", digest[:8], "timm")  # port 9: nothing answers
    weights = PublishedWeights(tag="test_in1k", sources=(source,), top1=70.0, top1_by="this test",
                               license="apache-2.0", trained_by="this test", crop_pct=0.95, interpolation="bicubic")
    entry = _REGISTRY["resnest14d"]
    monkeypatch.setitem(_REGISTRY, "resnest14d", dataclasses.replace(entry, weights=(weights,)))
    return "resnest14d.test_in1k"


def test_eval_pretrained_published_offline_uses_the_tags_preprocessing(cached_published, logits, images,
                                                                        weights_file, tmp_path, capsys):
    synsets = imagenet_classes().synsets
    root = write_folders(tmp_path / "val", images, [synsets[label] for label in placed(logits)])
    same_settings = evaluate(capsys, weights_file, "--data", str(root), "--crop-pct", "0.95",
                             "--interpolation", "bicubic")
    for flags in (["--model", "resnest14d", "--pretrained", "published"], ["--pretrained", cached_published]):
        capsys.readouterr()
        assert cli_main(["eval", *flags, "--data", str(root), "--image-size", str(SIZE), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert (result["crop_pct"], result["interpolation"]) == (0.95, "bicubic")
        assert (result["top1"], result["top5"], result["images"]) == (
            same_settings["top1"], same_settings["top5"], N_IMAGES)
    capsys.readouterr()
    assert cli_main(["predict", str(root / synsets[placed(logits)[0]] / "img000.png"), "--pretrained",
                     cached_published, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"][0]
    assert printed["class"] == imagenet_classes().names[printed["index"]]
    assert cli_main(["eval", "--pretrained", "published", "--data", str(root)]) == 2
    assert "needs the architecture: add --model NAME" in capsys.readouterr().err


def test_unknown_folders_are_named_with_close_matches(logits, images, weights_file, tmp_path, capsys):
    folders = ["n01440764"] * (N_IMAGES - 2) + ["n01440765", "tubb"]
    root = write_folders(tmp_path / "val", images, folders)
    error = eval_error(capsys, weights_file, "--data", str(root))
    assert "2 class folder(s)" in error and "'n01440765' (did you mean 'n01440764'?)" in error and "'tubb'" in error


def test_a_subset_outside_the_200_classes_is_refused(logits, images, weights_file, tmp_path, capsys):
    root = write_folders(tmp_path / "val", images, ["n01440764"] * N_IMAGES)  # tench: not in ImageNet-A
    error = eval_error(capsys, weights_file, "--data", str(root), "--class-subset", "imagenet-a")
    assert "not among the 200 of --class-subset imagenet-a: tench (n01440764)" in error


def test_a_fine_tuned_models_folder_may_hold_some_of_its_classes(images, tmp_path, capsys):
    model = create_model("resnest14d", num_classes=3)
    checkpoint = tmp_path / "run.pth"
    torch.save({"model_name": "resnest14d", "class_names": ["cat", "dog", "fox"], "model": model.state_dict()},
               checkpoint)
    root = write_folders(tmp_path / "val", images, ["dog", "fox"] * (N_IMAGES // 2))
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG not an image")
    capsys.readouterr()
    assert cli_main(["eval", "--checkpoint", str(checkpoint), "--image-size", str(SIZE), "--data", str(root),
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["layout"] == "names" and result["images"] == N_IMAGES and result["skipped"] == 1
    assert cli_main(["eval", "--checkpoint", str(checkpoint), "--image-size", str(SIZE), "--data", str(root)]) == 0
    assert f"({N_IMAGES} images, 1 unreadable skipped)" in capsys.readouterr().out
    (root / "wolf").mkdir()
    images[0].save(root / "wolf" / "x.png")
    assert cli_main(["eval", "--checkpoint", str(checkpoint), "--image-size", str(SIZE), "--data", str(root)]) == 2
    assert "'wolf'" in capsys.readouterr().err


def test_eval_pretrained_repository_needs_no_model_name(logits, images, weights_file, tmp_path, capsys):
    synsets = imagenet_classes().synsets
    root = write_folders(tmp_path / "val", images, [synsets[label] for label in placed(logits)])
    save_pretrained(load_trained(weights_file, "resnest14d").model, tmp_path / "repo")
    capsys.readouterr()
    assert cli_main(["eval", "--pretrained", f"local-dir:{tmp_path / 'repo'}", "--data", str(root),
                     "--image-size", str(SIZE), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["top1"], result["top5"], result["layout"]) == (50.0, 75.0, "synsets")


def test_a_timm_style_config_naming_classes_by_synset_predicts_names(weights_file, images, tmp_path, capsys):
    repo = save_pretrained(load_trained(weights_file, "resnest14d").model, tmp_path / "repo")
    config = json.loads((repo / "config.json").read_text())
    config["label_names"] = ImageNetInfo().label_names()  # timm's push_to_hf_hub writes the synsets here
    (repo / "config.json").write_text(json.dumps(config))
    images[0].save(tmp_path / "photo.png")
    capsys.readouterr()
    assert cli_main(["predict", str(tmp_path / "photo.png"), "--checkpoint", f"local-dir:{repo}", "--json"]) == 0
    top = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"][0]
    assert top["class"] == imagenet_classes().names[top["index"]]
    assert create_model(f"local-dir:{repo}").pretrained_cfg["label_synsets"][876] == "n04493381"

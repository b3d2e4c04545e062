"""Faster / Mask R-CNN over ResNeSt, SE and SK backbones: build, losses, outputs, weights, training."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from splitattn.cli import main
from splitattn.data import DataError
from splitattn.dense.coco import CocoFormatError
from splitattn.dense.shapes import make_shapes_dataset
from splitattn.detection import fasterrcnn, fpn_backbone, maskrcnn
from splitattn.detection import train as detection_train
from splitattn.detection.dataset import CocoDetectionDataset
from splitattn.detection.evaluate import evaluate_coco
from splitattn.detection.train import DetectionConfig, train_detector
from splitattn.training.checkpoint import load_checkpoint, save_checkpoint

from .dense_helpers import (
    FAMILIES,
    SMALL_DETECTOR,
    assert_backbone_matches,
    assert_same_weights,
    classification_checkpoint,
    one_thread,
    tensorboard_events,
)

__all__ = ["one_thread"]  # the fixture is used by name

LOSSES = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
# Measured over seeds 0-2 (see the test): mAP 0.26-0.35, mAP50 0.60-0.65.
MIN_MAP50, MIN_MAP = 0.40, 0.18


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    return (make_shapes_dataset(root / "train", 48, image_size=64, min_size=10, max_size=25, seed=1),
            make_shapes_dataset(root / "val", 16, image_size=64, min_size=10, max_size=25, seed=2))


def _targets(masks: bool) -> list[dict[str, torch.Tensor]]:
    targets = []
    for box in ([8.0, 10.0, 30.0, 28.0], [30.0, 20.0, 60.0, 50.0]):
        target = {"boxes": torch.tensor([box]), "labels": torch.tensor([2])}
        if masks:
            mask = torch.zeros(1, 56, 72, dtype=torch.uint8)
            mask[0, int(box[1]):int(box[3]), int(box[0]):int(box[2])] = 1
            target["masks"] = mask
        targets.append(target)
    return targets


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("builder", [fasterrcnn, maskrcnn], ids=["fasterrcnn", "maskrcnn"])
def test_every_family_detects(builder, name, one_thread):
    torch.manual_seed(0)
    masks = builder is maskrcnn
    model = builder(name, num_classes=3, **SMALL_DETECTOR)
    images = [torch.rand(3, 56, 72), torch.rand(3, 56, 72)]
    losses = model(images, _targets(masks))
    assert set(losses) == LOSSES | ({"loss_mask"} if masks else set())
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for n, p in model.backbone.body.named_parameters() if n.startswith("layer4")]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    with torch.no_grad():
        outputs = model(images)
    assert len(outputs) == 2
    for output in outputs:
        n = output["boxes"].shape[0]
        assert output["boxes"].shape == (n, 4) and output["labels"].shape == (n,) and output["scores"].shape == (n,)
        assert n > 0, "an untrained detector still proposes boxes (scores are low, not absent)"
        # boxes are in the input's pixels, well formed; labels are object classes
        assert output["boxes"][:, 2].max() <= 72.01 and output["boxes"][:, 3].max() <= 56.01
        assert (output["boxes"][:, :2] >= 0).all() and (output["boxes"][:, 2:] >= output["boxes"][:, :2]).all()
        assert output["labels"].min() >= 1 and output["labels"].max() <= 2
        if masks:
            assert output["masks"].shape == (n, 1, 56, 72)
        else:
            assert "masks" not in output


def test_fpn_levels_and_channels():
    backbone = fpn_backbone("resnest14d", out_channels=32).eval()
    with torch.no_grad():
        maps = backbone(torch.rand(1, 3, 64, 96))
    assert list(maps) == ["0", "1", "2", "3", "pool"]
    assert [tuple(m.shape[-2:]) for m in maps.values()] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    assert all(m.shape[1] == 32 for m in maps.values()) and backbone.out_channels == 32


def test_pretrained_backbone_loads_unchanged_with_frozen_bn(tmp_path):
    path = tmp_path / "seresnet18-imagenet.safetensors"
    checkpoint = classification_checkpoint("seresnet18", path)
    model = fasterrcnn("seresnet18", num_classes=3, pretrained_backbone=path, **SMALL_DETECTOR)
    body = model.backbone.body
    assert_backbone_matches(checkpoint, body.state_dict())
    # torchvision's defaults with pretrained weights: frozen BN, layer2..layer4 train.
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in body.modules())
    trains = {n.split(".")[0] for n, p in body.named_parameters() if p.requires_grad}
    frozen = {n.split(".")[0] for n, p in body.named_parameters() if not p.requires_grad}
    assert trains == {"layer2", "layer3", "layer4"} and frozen == {"conv1", "layer1"}
    # The same with Mask R-CNN, every stage trainable and batch statistics kept.
    model = maskrcnn("seresnet18", num_classes=3, pretrained_backbone=str(path), trainable_layers=5,
                     frozen_bn=False, **SMALL_DETECTOR)
    assert_backbone_matches(checkpoint, model.backbone.body.state_dict())
    assert all(p.requires_grad for p in model.backbone.body.parameters())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.body.modules())


@pytest.mark.parametrize("layers, trained", [(0, set()), (1, {"layer4"}), (5, {"conv1", "bn1", "layer1", "layer2",
                                                                               "layer3", "layer4"})])
def test_trainable_layers(layers, trained):
    body = fpn_backbone("resnest14d", trainable_layers=layers).body
    assert {n.split(".")[0] for n, p in body.named_parameters() if p.requires_grad} == trained


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"unknown backbone 'resnest5'.*resnest50"):
        fasterrcnn("resnest5", num_classes=3)
    with pytest.raises(ValueError, match=r"trainable_layers must be in 0\.\.5"):
        fasterrcnn("resnest14d", num_classes=3, trainable_layers=6)
    with pytest.raises(ValueError, match="frozen_bn=True needs pretrained_backbone"):
        fasterrcnn("resnest14d", num_classes=3, frozen_bn=True)
    with pytest.raises(ValueError, match="one tuple per pyramid level"):
        fasterrcnn("resnest14d", num_classes=3, anchor_sizes=((16,), (32,)))
    with pytest.raises(ValueError, match="num_classes counts the background"):
        maskrcnn("resnest14d", num_classes=1)


def test_coco_dataset_targets(shapes):
    train, _ = shapes
    dataset = CocoDetectionDataset(train.annotations, train.images, masks=True)
    coco = json.loads(train.annotations.read_text())
    image, target = dataset[0]
    anns = [a for a in coco["annotations"] if a["image_id"] == coco["images"][0]["id"]]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert target["boxes"].shape == (len(anns), 4) and target["masks"].shape == (len(anns), 64, 64)
    x, y, w, h = anns[0]["bbox"]
    assert torch.allclose(target["boxes"][0], torch.tensor([x, y, x + w, y + h]))
    assert target["labels"].tolist() == [a["category_id"] for a in anns]  # ids 1..3 are already contiguous
    # The polygon covers about its area in the mask.
    assert abs(int(target["masks"][0].sum()) - anns[0]["area"]) < 0.25 * anns[0]["area"] + 20


def test_malformed_coco_files_are_named(tmp_path, shapes):
    train, _ = shapes
    good = json.loads(train.annotations.read_text())

    def write(data, name="bad.json"):
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return path

    with pytest.raises(CocoFormatError, match="not valid JSON"):
        CocoDetectionDataset(write("{not json"), train.images)
    with pytest.raises(CocoFormatError, match="expected a top-level 'categories' list"):
        CocoDetectionDataset(write({k: v for k, v in good.items() if k != "categories"}), train.images)
    bad = json.loads(json.dumps(good))
    bad["annotations"][3]["image_id"] = 999
    with pytest.raises(CocoFormatError, match=r"annotations\[3\] refers to image_id 999"):
        CocoDetectionDataset(write(bad), train.images)
    bad = json.loads(json.dumps(good))
    bad["annotations"][0]["bbox"] = [1, 2, 3]
    with pytest.raises(CocoFormatError, match=r"'bbox' must be \[x, y, width, height\]"):
        CocoDetectionDataset(write(bad), train.images)
    bad = json.loads(json.dumps(good))
    bad["annotations"][0]["category_id"] = 7
    with pytest.raises(CocoFormatError, match="has category_id 7; the categories are"):
        CocoDetectionDataset(write(bad), train.images)
    with pytest.raises(DataError, match=r"48 of the 48 images listed .* are not in"):
        CocoDetectionDataset(train.annotations, tmp_path)
    with pytest.raises(CocoFormatError, match="does not exist"):
        CocoDetectionDataset(tmp_path / "missing.json", train.images)


@pytest.mark.long
def test_training_finds_the_shapes(shapes, one_thread):
    """200 SGD steps from scratch on 48 images of 64 px; COCO mAP on 16 held-out images.

    seresnet18, seeds 0, 1, 2 gave mAP50 0.60, 0.65, 0.63 and mAP 0.33, 0.35, 0.26 (30-40 s each on
    one thread); the thresholds leave a margin. An untrained detector scores about 0.
    """
    train, val = shapes
    config = DetectionConfig(str(train.annotations), str(train.images), str(val.annotations), str(val.images),
                             backbone="seresnet18", steps=200, batch_size=4, lr=0.02, warmup_steps=20, workers=0,
                             min_size=64, max_size=64, seed=0, log_every=0,
                             model_args={k: v for k, v in SMALL_DETECTOR.items() if k not in ("min_size", "max_size")})
    start = time.perf_counter()
    run = train_detector(config, log=lambda _: None)
    first, last = sum(run.fit.losses[:20]) / 20, sum(run.fit.losses[-20:]) / 20
    print(f"loss {first:.3f} -> {last:.3f}, bbox {run.metrics['bbox']}, {time.perf_counter() - start:.0f} s")
    assert last < 0.65 * first
    assert run.metrics["bbox"]["mAP50"] > MIN_MAP50 and run.metrics["bbox"]["mAP"] > MIN_MAP


def test_train_det_command(tmp_path, shapes, one_thread):
    train, val = shapes
    out = tmp_path / "run"
    code = main(["train-det", "--annotations", str(train.annotations), "--images", str(train.images),
                 "--val-annotations", str(val.annotations), "--val-images", str(val.images),
                 "--architecture", "maskrcnn", "--backbone", "skresnet18", "--steps", "2", "--batch-size", "2",
                 "--warmup-steps", "1", "--min-size", "64", "--max-size", "64", "--workers", "0", "--device", "cpu",
                 "--output", str(out), "--model-arg", "fpn_channels=32", "--model-arg", "representation_size=64",
                 "--model-arg", "anchor_sizes=[[8], [16], [32], [64], [128]]",
                 "--model-arg", "box_detections_per_img=5", "--log-every", "1", "--log", "tensorboard"])
    assert code == 0
    saved = load_checkpoint(out / "last.pth")
    assert saved["classes"] == ["square", "circle", "triangle"] and saved["config"]["backbone"] == "skresnet18"
    rebuilt = maskrcnn("skresnet18", num_classes=4, min_size=64, max_size=64, fpn_channels=32,
                       representation_size=64, anchor_sizes=[[8], [16], [32], [64], [128]], box_detections_per_img=5)
    rebuilt.load_state_dict(saved["model"])
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    # the reported mAPs are those of the saved model on the validation file (pycocotools' own COCOeval)
    recomputed = evaluate_coco(rebuilt, CocoDetectionDataset(val.annotations, val.images, masks=True),
                               torch.device("cpu"))
    assert set(metrics) == set(recomputed) == {"bbox", "segm"}
    assert all(metrics[kind] == pytest.approx(recomputed[kind]) for kind in metrics)
    events = tensorboard_events(out)
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert {"train/loss_classifier", "train/loss_mask", "train/loss_objectness"} <= set(events.Tags()["scalars"])
    assert events.Scalars("val/segm/mAP")[0].value == pytest.approx(metrics["segm"]["mAP"])
    assert events.Tags()["images"] == ["predictions"]


def test_train_det_command_reports_bad_data(tmp_path, shapes, capsys):
    train, _ = shapes
    code = main(["train-det", "--annotations", str(train.annotations), "--images", str(tmp_path), "--steps", "1"])
    assert code == 2
    assert "are not in" in capsys.readouterr().err


def test_signal_stops_and_resume_continues_exactly(tmp_path, one_thread, monkeypatch):
    """In-process: a SIGTERM during step 3 ends the run after that step, saved; resuming with another
    architecture is refused; resuming with the same settings ends bit-identical to an uninterrupted
    run (6 images, 3 batches a pass: the stop is at the end of the first pass, the segmentation test
    stops in the middle of one); resuming the finished run trains nothing."""
    data = make_shapes_dataset(tmp_path / "data", 6, image_size=64, min_size=10, max_size=25, seed=4)
    small = {k: v for k, v in SMALL_DETECTOR.items() if k not in ("min_size", "max_size")}

    def config(output: str, **changes) -> DetectionConfig:
        return DetectionConfig(str(data.annotations), str(data.images), backbone="resnest14d", steps=6, batch_size=2,
                               workers=0, min_size=64, max_size=64, seed=2, log_every=0, progress=False,
                               checkpoint_every=0, output=str(tmp_path / output), model_args=small, **changes)

    whole = train_detector(config("whole"), log=lambda _: None)
    real, calls = detection_train.detection_loss, []

    def signalling(model, batch):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(model, batch)

    monkeypatch.setattr(detection_train, "detection_loss", signalling)
    messages: list[str] = []
    stopped = train_detector(config("cut"), log=messages.append)
    monkeypatch.undo()
    assert stopped.stopped and stopped.fit.step == 3 and stopped.metrics == {}
    assert stopped.checkpoint == tmp_path / "cut" / "last.pth"
    assert "received SIGTERM: finishing this step, then saving and exiting" in messages
    assert messages[-1] == f"saved {stopped.checkpoint} at step 3; resume with resume=True"  # Python words
    state = load_checkpoint(stopped.checkpoint)
    assert state["step"] == 3 and state["data_position"] == [0, 3] and state["classes"] == ["square", "circle",
                                                                                              "triangle"]
    with pytest.raises(ValueError, match=r"cannot resume from .*last\.pth: it was trained with "
                                         r"architecture='fasterrcnn', while this run asks for architecture='maskrcnn'"):
        train_detector(config("cut", architecture="maskrcnn", resume=True), log=lambda _: None)
    resumed = train_detector(config("cut", resume=True), log=messages.append)
    assert not resumed.stopped and resumed.fit.start_step == 3 and len(resumed.fit.losses) == 3
    assert_same_weights(resumed.model.state_dict(), whole.model.state_dict())
    assert_same_weights(load_checkpoint(resumed.checkpoint)["model"], load_checkpoint(whole.checkpoint)["model"])
    again = train_detector(config("cut", resume=True), log=messages.append)
    assert again.fit.losses == [] and not again.stopped
    assert f"resume: {resumed.checkpoint} has finished all 6 steps already; nothing to train" in messages[-1]
    assert_same_weights(again.model.state_dict(), whole.model.state_dict())
    # A weights-only last.pth (as written before runs could resume) is refused, not half-used.
    save_checkpoint({"model": whole.model.state_dict(), "config": {}}, tmp_path / "old" / "last.pth")
    with pytest.raises(ValueError, match=r"cannot resume from .*last\.pth: it holds no training state"):
        train_detector(config("old", resume=True), log=lambda _: None)

"""DeepLabV3 over dilated ResNeSt, SE and SK backbones: build, outputs, weights, data, training."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from splitattn.cli import main
from splitattn.data import DataError
from splitattn.dense.loop import resolve_warmup
from splitattn.dense.shapes import make_shapes_dataset
from splitattn.models import IMAGENET_MEAN, IMAGENET_STD
from splitattn.segmentation import CocoSegmentationDataset, MaskFolderDataset, deeplabv3
from splitattn.segmentation import train as segmentation_train
from splitattn.segmentation.datasets import segmentation_transform
from splitattn.segmentation.metrics import confusion_matrix, evaluate_segmentation, scores
from splitattn.segmentation.train import SegmentationConfig, train_segmenter
from splitattn.training.checkpoint import load_checkpoint, save_checkpoint
from splitattn.training.optim import warmup_cosine

from .dense_helpers import (
    FAMILIES,
    assert_backbone_matches,
    assert_same_weights,
    classification_checkpoint,
    one_thread,
    one_thread_env,
    signal_when_written,
    tensorboard_events,
)

__all__ = ["one_thread"]  # the fixture is used by name

# Measured over seeds 0-2 (see the test): mIoU 0.44-0.47, background IoU ~0.96, shapes 0.21-0.38.
MIN_MIOU, MIN_CLASS_IOU = 0.36, 0.12


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    return (make_shapes_dataset(root / "train", 48, image_size=64, min_size=10, max_size=25, seed=1),
            make_shapes_dataset(root / "val", 16, image_size=64, min_size=10, max_size=25, seed=2))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("output_stride", [8, 16])
def test_every_family_segments(name, output_stride, one_thread):
    torch.manual_seed(0)
    model = deeplabv3(name, num_classes=4, output_stride=output_stride, aux_loss=True)
    body = model.backbone.body
    assert body.feature_strides == [output_stride, output_stride]  # stages 3 and 4, dilated
    images, labels = torch.randn(2, 3, 56, 72), torch.randint(0, 4, (2, 56, 72))
    outputs = model(images)
    assert outputs["out"].shape == (2, 4, 56, 72) and outputs["aux"].shape == (2, 4, 56, 72)
    loss = F.cross_entropy(outputs["out"], labels) + 0.5 * F.cross_entropy(outputs["aux"], labels)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in body.layer4.parameters())
    model.eval()
    with torch.no_grad():
        assert model(images[:1])["out"].shape == (1, 4, 56, 72)


def test_pretrained_backbone_loads_unchanged(tmp_path):
    path = tmp_path / "resnest14d-imagenet.pth"
    checkpoint = classification_checkpoint("resnest14d", path)
    model = deeplabv3("resnest14d", num_classes=3, output_stride=16, pretrained_backbone=path)
    assert_backbone_matches(checkpoint, model.backbone.body.state_dict())
    assert "aux_classifier" not in dict(model.named_children()) or model.aux_classifier is None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="output_stride must be 8 or 16"):
        deeplabv3("resnest14d", num_classes=3, output_stride=32)
    with pytest.raises(ValueError, match="unknown backbone 'sknet50'"):
        deeplabv3("sknet50", num_classes=3)


def test_mask_folder_and_coco_agree(shapes):
    train, _ = shapes
    folder = MaskFolderDataset(train.images, train.masks)
    coco = CocoSegmentationDataset(train.annotations, train.images)
    assert folder.num_classes == coco.num_classes == 4 and len(folder) == len(coco) == 48
    image, labels = folder[0]
    assert image.shape == (3, 64, 64) and labels.shape == (64, 64) and labels.dtype == torch.int64
    agree = sum(float((folder[i][1] == coco[i][1]).float().mean()) for i in range(8)) / 8
    assert agree > 0.98  # PIL's and pycocotools' polygon rasterisers differ only on edge pixels


def test_mask_folder_errors_are_named(tmp_path, shapes):
    train, _ = shapes
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (8, 8)).save(images / f"{name}.jpg")
    Image.new("L", (8, 8)).save(masks / "a.png")
    Image.new("L", (8, 8)).save(masks / "c.png")
    with pytest.raises(DataError, match=r"1 mask\(s\) without an image, e.g. \['c'\]; 1 image\(s\) without a mask"):
        MaskFolderDataset(images, masks)
    (masks / "c.png").unlink()
    Image.new("RGB", (8, 8)).save(masks / "b.png")
    with pytest.raises(DataError, match="has mode RGB; expected a single-channel label image"):
        MaskFolderDataset(images, masks)
    with pytest.raises(DataError, match=r"mask directory .* does not exist"):
        MaskFolderDataset(train.images, tmp_path / "nowhere")


def test_miou():
    pred = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    target = torch.tensor([[0, 0, 1, 2], [2, 2, 255, 0]])
    result = scores(confusion_matrix(pred, target, 4))
    # class 0: 3/3; class 1: 1/2; class 2: 2/3; class 3 absent from both, not counted.
    assert result["iou"][:3] == pytest.approx([1.0, 0.5, 2 / 3]) and np.isnan(result["iou"][3])
    assert result["mIoU"] == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    assert result["pixel_accuracy"] == pytest.approx(6 / 7)


@pytest.mark.long
def test_training_finds_the_shapes(shapes, one_thread):
    """100 SGD steps from scratch, output stride 8, 48 images of 64 px; mIoU on 16 held-out images.

    seresnet18: with 100 steps seeds 0, 1, 2 gave mIoU 0.47, 0.46, 0.44 (the thresholds above are set
    from these; seed 0 measured again with the shared loop: 0.44, shapes 0.23-0.36, loss 1.15 -> 0.18,
    about 18 s on one thread); 200 steps give 0.51 for twice the time. A model predicting all
    background scores about 0.24, and the shape classes 0.
    """
    train, val = shapes
    config = SegmentationConfig(str(train.images), masks=str(train.masks), val_images=str(val.images),
                                val_masks=str(val.masks), backbone="seresnet18", output_stride=8, image_size=64,
                                steps=100, batch_size=4, lr=0.01, warmup_steps=20, workers=0, seed=0, log_every=0)
    start = time.perf_counter()
    run = train_segmenter(config, log=lambda _: None)
    first, last = sum(run.fit.losses[:10]) / 10, sum(run.fit.losses[-20:]) / 20
    print(f"loss {first:.3f} -> {last:.3f}, mIoU {run.metrics['mIoU']:.3f} {run.metrics['iou']}, "
          f"{time.perf_counter() - start:.0f} s")
    assert last < 0.4 * first
    assert run.metrics["mIoU"] > MIN_MIOU
    assert min(run.metrics["iou"][1:]) > MIN_CLASS_IOU  # every shape class is found, not just the background


IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)


def test_train_seg_command(tmp_path, shapes, one_thread):
    train, val = shapes
    out = tmp_path / "run"
    code = main(["train-seg", "--images", str(train.images), "--annotations", str(train.annotations),
                 "--val-images", str(val.images), "--val-masks", str(val.masks), "--backbone", "resnest14d",
                 "--output-stride", "16", "--aux-loss", "--image-size", "48", "--steps", "2", "--batch-size", "2",
                 "--warmup-steps", "1", "--workers", "0", "--device", "cpu", "--output", str(out),
                 "--log", "tensorboard"])
    assert code == 0
    saved = load_checkpoint(out / "last.pth")
    assert saved["num_classes"] == 4 and saved["config"]["output_stride"] == 16
    rebuilt = deeplabv3("resnest14d", 4, 16, aux_loss=True)
    rebuilt.load_state_dict(saved["model"])
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    # the reported mIoU is that of the saved model on the validation masks
    val_set = MaskFolderDataset(val.images, val.masks, segmentation_transform(48, *IMAGENET, train=False))
    recomputed = evaluate_segmentation(rebuilt, val_set, torch.device("cpu"), 4)
    assert metrics["mIoU"] == pytest.approx(recomputed["mIoU"]) and metrics["iou"] == pytest.approx(recomputed["iou"],
                                                                                                     nan_ok=True)
    events = tensorboard_events(out)
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert {"train/loss_out", "train/loss_aux", "train/lr"} <= set(events.Tags()["scalars"])
    assert events.Scalars("val/mIoU")[0].value == pytest.approx(metrics["mIoU"])
    assert events.Tags()["images"] == ["predictions"]


def test_train_seg_command_reports_bad_data(tmp_path, shapes, capsys):
    train, _ = shapes
    code = main(["train-seg", "--images", str(train.images), "--masks", str(tmp_path), "--steps", "1"])
    assert code == 2
    assert "holds no image files" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """8 images: 4 batches of 2 a pass over the data, so that short runs cross passes."""
    return make_shapes_dataset(tmp_path_factory.mktemp("small"), 8, image_size=64, min_size=10, max_size=25, seed=3)


def _seg_args(data, output: Path, *extra: str) -> list[str]:
    """A small train-seg command line (resnest14d, 48 px, batches of 2, no evaluation)."""
    return ["train-seg", "--images", str(data.images), "--masks", str(data.masks), "--backbone", "resnest14d",
            "--output-stride", "16", "--image-size", "48", "--batch-size", "2", "--workers", "0", "--device", "cpu",
            "--seed", "5", "--output", str(output), *extra]


def test_sigterm_then_resume_ends_with_the_same_weights(tmp_path, small, one_thread):
    """SIGTERM part way: the step under way finishes, the state is saved, exit 0; --resume then ends
    bit-identical to an uninterrupted run. The signal follows the first checkpoint (step 5 of 8), in
    the second pass over the 4-batch data, so the resumed run starts in the middle of a pass."""
    quiet = ["--steps", "8", "--log-every", "0", "--no-progress"]
    cut = tmp_path / "cut"
    process = subprocess.Popen([sys.executable, "-m", "splitattn", *_seg_args(small, cut, *quiet, "--checkpoint-every",
                                                                              "5")],
                               env=one_thread_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watcher = signal_when_written(cut / "last.pth", process, signal.SIGTERM)
    # Meanwhile (the subprocess takes seconds to start) the uninterrupted run, saving only at the end.
    assert main(_seg_args(small, tmp_path / "whole", *quiet, "--checkpoint-every", "0")) == 0
    output, _ = process.communicate(timeout=300)
    watcher.join()
    assert process.returncode == 0, output
    step = load_checkpoint(cut / "last.pth")["step"]
    assert 5 <= step < 8, f"the signal should land part way: {output}"
    assert "received SIGTERM: finishing this step, then saving and exiting" in output
    assert f"saved {cut / 'last.pth'} at step {step}; resume with --resume" in output
    assert not (cut / "metrics.json").exists()  # written when the run finishes
    assert main(_seg_args(small, cut, *quiet, "--checkpoint-every", "5", "--resume")) == 0
    assert_same_weights(load_checkpoint(cut / "last.pth")["model"],
                        load_checkpoint(tmp_path / "whole" / "last.pth")["model"])


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, small, one_thread, monkeypatch,
                                                                     capsys):
    real, calls = segmentation_train.segmentation_loss, []

    def poisoned(model, batch):
        calls.append(1)
        loss, parts = real(model, batch)
        if len(calls) < 4:
            return loss, parts
        return loss * float("nan"), {k: float("nan") for k in parts}

    monkeypatch.setattr(segmentation_train, "segmentation_loss", poisoned)
    out = tmp_path / "run"
    code = main(_seg_args(small, out, "--steps", "6", "--checkpoint-every", "2", "--log-every", "0", "--no-progress"))
    assert code == 3
    error = capsys.readouterr().err
    assert re.search(r"splitattn train-seg: error: loss is nan at step 4 of 6 \(loss_out nan\): stopping\. The last "
                     r"good checkpoint \(.*last\.pth, step 2\) is kept; lower the learning rate", error), error
    state = load_checkpoint(out / "last.pth")
    assert state["step"] == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, small):
    """A 10-step train-seg run with the progress bar and a log line every 4 steps, under umask 022;
    returns the exit code, the run directory, stdout and stderr."""
    out = tmp_path_factory.mktemp("short") / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    threads, umask = torch.get_num_threads(), os.umask(0o022)
    torch.set_num_threads(1)
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(_seg_args(small, out, "--aux-loss", "--steps", "10", "--log-every", "4"))
    finally:
        os.umask(umask)
        torch.set_num_threads(threads)
    return code, out, stdout.getvalue(), stderr.getvalue()


LOG_LINE = re.compile(r"step (\d+)/10: loss ([\d.]+) = loss_out ([\d.]+) \+ loss_aux ([\d.]+) "
                      r"\(mean of the last (\d+) steps?\), lr ([\d.e+-]+), [\d.]+ s/step, ETA \d\d:\d\d")


def test_progress_bar_and_log_lines_from_the_first_step(short_run):
    code, _, out, err = short_run
    assert code == 0
    # tqdm on stderr: the bar has an ETA and the step's loss and learning rate once the first step is done
    assert re.search(r"train: +10%.*\| 1/10 \[\d\d:\d\d<\d\d:\d\d, .*loss=[\d.]+, lr=1\.00e-05\]", err), err
    lines = [LOG_LINE.search(line) for line in out.splitlines() if line.startswith("step ")]
    assert all(lines), out
    assert [(int(m[1]), int(m[5])) for m in lines] == [(1, 1), (4, 4), (8, 4), (10, 4)]
    for match in lines:  # the parts are averaged over the same steps as the total, so they add up
        total, out_part, aux_part = (float(match[i]) for i in (2, 3, 4))
        assert total == pytest.approx(out_part + aux_part, abs=2e-4)


def test_short_run_warms_up_and_ends_its_decay_near_zero(short_run, small, capsys):
    code, out_dir, out, _ = short_run
    assert code == 0
    lrs = {int(m[1]): float(m[6]) for m in (LOG_LINE.search(line) for line in out.splitlines()) if m}
    peak = 0.01
    assert lrs[1] == pytest.approx(peak * 1e-3)  # default warm-up: a tenth of the run, here 1 step
    assert lrs[4] > lrs[8] > lrs[10] and lrs[10] < 0.05 * peak
    assert load_checkpoint(out_dir / "last.pth")["scheduler"]["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)
    # Any length: the last step's rate is the end of the cosine, and nothing is left after it.
    for steps in (2, 10, 37, 1000, 5000):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
        scheduler, used = warmup_cosine(optimizer, steps, resolve_warmup(steps, None)), []
        for _ in range(steps):
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert max(used) == pytest.approx(peak) and optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
        assert steps < 10 or used[-1] < 0.05 * peak
    assert resolve_warmup(1000, None) == 100 and resolve_warmup(5000, None) == 100 and resolve_warmup(37, None) == 3
    # A warm-up as long as the run is refused, naming both numbers.
    assert main(_seg_args(small, out_dir, "--steps", "10", "--warmup-steps", "10")) == 2
    assert "--warmup-steps 10 must be at least 0 and shorter than the run (--steps 10)" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"warmup_steps=12 must be at least 0 and shorter than the run \(steps=10\)"):
        resolve_warmup(10, 12)


def test_run_files_have_normal_permissions(short_run, tmp_path):
    code, out_dir, _, _ = short_run
    assert code == 0
    for name in ("last.pth", "metrics.json"):  # written under umask 022
        assert (out_dir / name).stat().st_mode & 0o777 == 0o644, name
    umask = os.umask(0o027)
    try:
        save_checkpoint({"x": torch.ones(1)}, tmp_path / "c.pth")
    finally:
        os.umask(umask)
    assert (tmp_path / "c.pth").stat().st_mode & 0o777 == 0o640

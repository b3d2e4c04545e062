"""One training stack: classification and detection/segmentation share the optimiser builder, the
schedule, the checkpoint writer and the config loader (defaults < YAML file < KEY=VALUE < flags)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from splitattn import create_model
from splitattn.cli import main
from splitattn.cli import train_seg as train_seg_command
from splitattn.dense.recipe import DenseRecipe, fit_recipe
from splitattn.dense.shapes import make_shapes_dataset
from splitattn.detection import fpn_backbone
from splitattn.segmentation.train import SegmentationConfig
from splitattn.training import TrainConfig, build_config, build_optimizer, build_scheduler, param_groups
from splitattn.training import checkpoint as checkpoint_module
from splitattn.training.checkpoint import STATE_KEYS, load_checkpoint, restore_rng, training_state
from splitattn.training.runtime import Runtime
from splitattn.training.trainer import Trainer

from .dense_helpers import one_thread, tensorboard_events

__all__ = ["one_thread"]  # the fixture is used by name

MARK = "written by training.checkpoint"


def _tiny_folder(root: Path) -> Path:
    """Two classes of 16 px images: 4 each to train on (2 batches of 4), 1 each to validate on."""
    for split, count in (("train", 4), ("val", 1)):
        for label, colour in (("dark", 40), ("light", 210)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (16, 16), (colour + 5 * i, colour, colour)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step ``train`` run with ``optimizer=adamw`` and a 2-step ``train-seg`` run, both logging
    to TensorBoard, while the generator states that ``training.checkpoint`` captures carry a mark:
    a file holds the mark only if that module's writer built it."""
    root = tmp_path_factory.mktemp("runs")
    real = checkpoint_module.capture_rng
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(checkpoint_module, "capture_rng", lambda: {**real(), "mark": MARK})
            assert main(["train", "--data", str(_tiny_folder(root / "folder")), "--output", str(root / "cls"),
                         "--model", "resnest14d", "--image-size", "16", "--batch-size", "4", "--epochs", "1",
                         "--device", "cpu", "--no-progress", "optimizer=adamw", "lr=0.001", "warmup_epochs=0.5",
                         "log=tensorboard"]) == 0
            shapes = make_shapes_dataset(root / "shapes", 4, image_size=32, min_size=8, max_size=14, seed=3)
            assert main(["train-seg", "--images", str(shapes.images), "--masks", str(shapes.masks), "--backbone",
                         "resnest14d", "--output-stride", "16", "--image-size", "32", "--batch-size", "2", "--steps",
                         "2", "--warmup-steps", "1", "--device", "cpu", "--output", str(root / "seg"),
                         "--no-progress", "--log-every", "0", "--log", "tensorboard"]) == 0
    finally:
        torch.set_num_threads(threads)
    return root / "cls", root / "seg"


def _group_ids(groups: list[dict]) -> list[tuple[float, set[int]]]:
    return [(g["weight_decay"], {id(p) for p in g["params"]}) for g in groups]


def test_one_optimizer_builder_for_a_classifier_and_a_detector_backbone():
    """The same rule for both: decay on conv/linear weights, none on norms and biases, frozen
    parameters left out; SGD with momentum or AdamW by name, anything else refused with the list."""
    classifier = create_model("resnest14d", num_classes=10)
    detector = fpn_backbone("resnest14d", trainable_layers=3)  # frozen BN and a frozen stem, FPN convs with biases
    for model in (classifier, detector):
        trainable = [p for p in model.parameters() if p.requires_grad]
        expected = [(1e-4, {id(p) for p in trainable if p.ndim > 1}), (0.0, {id(p) for p in trainable if p.ndim <= 1})]
        assert _group_ids(param_groups(model, 1e-4)) == expected
        assert expected[1][1], "norm weights or biases should be among the trainable parameters"
        for name, kind in (("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)):
            optimizer = build_optimizer(model, name, lr=0.1, weight_decay=1e-4)
            assert type(optimizer) is kind and _group_ids(optimizer.param_groups) == expected
    assert len(list(detector.parameters())) > sum(p.requires_grad for p in detector.parameters())
    assert build_optimizer(classifier, lr=0.1, weight_decay=0.0).defaults["momentum"] == 0.9
    with pytest.raises(ValueError, match=r"optimizer must be one of sgd, adamw, got 'adam' \(did you mean 'adamw'\?\)"):
        build_optimizer(classifier, "adam", lr=0.1, weight_decay=0.0)


def test_train_takes_optimizer_adamw(runs):
    classification, _ = runs
    assert yaml.safe_load((classification / "config.yaml").read_text())["optimizer"] == "adamw"
    saved = load_checkpoint(classification / "last.pth")["optimizer"]
    groups = saved["param_groups"]
    # AdamW (decoupled weight decay), not SGD's momentum nor Adam's L2 penalty, at the rate given (lr=0.001)
    assert [group["decoupled_weight_decay"] for group in groups] == [True, True]
    assert [group["initial_lr"] for group in groups] == [0.001, 0.001]
    assert [group["weight_decay"] for group in groups] == [1e-4, 0.0]
    # every trained parameter has AdamW's two moment estimates, after both steps of the run
    trained = [index for group in groups for index in group["params"]]
    assert sorted(saved["state"]) == sorted(trained)
    for state in saved["state"].values():
        assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and float(state["step"]) == 2
        assert (state["exp_avg_sq"] >= 0).all() and state["exp_avg_sq"].any()
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adamw"):  # before any data are read
        Trainer(TrainConfig(optimizer="rmsprop"), Runtime(torch.device("cpu")))


def _curve(make, steps: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    scheduler, lrs = make(optimizer), []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return [*lrs, optimizer.param_groups[0]["lr"]]  # the rate after the last step


def _warmup_cosine(peak: float, steps: int, warmup: int) -> list[float]:
    """The schedule as a user reads it: from a thousandth of the peak, linearly up to the peak over
    ``warmup`` steps, then half a cosine down to 0 as the last step ends; one rate per step and the
    rate after the last one."""
    start = 1e-3
    rising = [peak * (start + (1 - start) * i / warmup) for i in range(warmup)]
    return rising + [peak * 0.5 * (1 + math.cos(math.pi * i / (steps - warmup))) for i in range(steps - warmup + 1)]


def test_one_schedule_in_steps_for_both(runs):
    """Classification's epochs x steps and the dense loop's steps follow the same warm-up and
    cosine, which ends at 0: the schedule built for classification, the rates a dense run steps
    through, and the rates both real runs logged at each step."""
    expected = _warmup_cosine(0.4, steps=12, warmup=2)
    assert expected[2] == 0.4 and expected[-1] == pytest.approx(0.0, abs=1e-12)
    classification = _curve(lambda o: build_scheduler(o, epochs=3, steps_per_epoch=4, warmup_epochs=0.5), 12)
    assert classification == pytest.approx(expected, abs=1e-12)

    model = torch.nn.Linear(2, 1)
    recipe = DenseRecipe(steps=12, warmup_steps=2, lr=0.4, weight_decay=0.0, log_every=0, progress=False)
    batches = [torch.ones(1, 2)] * 3
    result = fit_recipe(model, batches, lambda m, b: (m(b).sum(), {}), recipe, torch.device("cpu"),
                        log=lambda _: None)
    assert result.lrs == pytest.approx(expected[:-1], abs=1e-12)

    # The real runs: 2 steps, 1 of warm-up; train at lr=0.001, train-seg at its default 0.01.
    for run, peak in zip(runs, (0.001, SegmentationConfig.lr), strict=True):
        logged = [(event.step, event.value) for event in tensorboard_events(run).Scalars("train/lr")]
        assert logged == [(1, pytest.approx(peak * 1e-3)), (2, pytest.approx(peak))], run.name
        assert load_checkpoint(run / "last.pth")["scheduler"]["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)


def test_classification_and_dense_checkpoints_come_from_one_writer(runs):
    """Both last.pth files load with the one loader, hold the shared training state with the
    generator states of the shared writer (the mark), and their own position and extras."""
    classification, segmentation = (load_checkpoint(run / "last.pth") for run in runs)
    for state in (classification, segmentation):
        assert set(STATE_KEYS) <= set(state) and state["rng"]["mark"] == MARK
        assert isinstance(state["rng"]["torch"], torch.Tensor)
        restore_rng(state["rng"])  # usable as saved
    assert {"model_name", "class_names", "epoch", "step_in_epoch", "best_top1", "config"} <= set(classification)
    assert (classification["epoch"], classification["step_in_epoch"]) == (1, 0)
    assert classification["class_names"] == ["dark", "light"] and classification["model_name"] == "resnest14d"
    assert {"config", "num_classes", "step", "data_position"} <= set(segmentation)
    assert (segmentation["step"], segmentation["data_position"]) == (2, [0, 2])
    with pytest.raises(ValueError, match="cannot use its own keys"):
        model = torch.nn.Linear(1, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        training_state(model, optimizer, None, torch.amp.GradScaler("cpu", enabled=False), {"step": 1},
                       {"model": "mine"})


def test_dense_run_writes_config_yaml_that_builds_the_same_config(runs):
    _, segmentation = runs
    saved = SegmentationConfig(**load_checkpoint(segmentation / "last.pth")["config"])
    rebuilt = build_config(config_file=segmentation / "config.yaml", config_class=SegmentationConfig)
    assert rebuilt == saved and rebuilt.steps == 2 and rebuilt.output == str(segmentation)


def _resolved_seg(monkeypatch, *argv: str) -> SegmentationConfig:
    """What ``train-seg ARGV`` would train with (the training itself replaced)."""
    seen = []
    monkeypatch.setattr(train_seg_command, "train_segmenter", seen.append)
    assert main(["train-seg", *argv]) == 0
    return seen[0]


def test_train_seg_precedence_defaults_yaml_overrides_flags(tmp_path, monkeypatch):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"backbone": "seresnet18", "steps": 7, "lr": 0.05, "batch_size": 3,
                                    "optimizer": "adamw", "amp": True, "progress": False, "log_every": 5,
                                    "masks": "old/masks", "output": str(tmp_path / "from-yaml")}))
    config = _resolved_seg(monkeypatch, "--images", "imgs", "--masks", "new/masks", "--config", str(path),
                           "lr=0.02", "steps=9", "aux_loss=true", "--steps", "4", "--batch-size", "6")
    assert config.weight_decay == 1e-4 and config.image_size == 512  # defaults nothing else sets
    assert (config.backbone, config.optimizer, config.log_every) == ("seresnet18", "adamw", 5)  # YAML over defaults
    assert config.amp is True and config.progress is False  # switches not given leave the YAML's values alone
    assert config.output == str(tmp_path / "from-yaml")  # the YAML over the command's own run directory
    assert config.lr == 0.02 and config.aux_loss is True  # KEY=VALUE over the YAML
    assert (config.steps, config.batch_size) == (4, 6)  # flags over KEY=VALUE and the YAML
    assert (config.images, config.masks, config.annotations) == ("imgs", "new/masks", None)
    # Without --config: the defaults, with the command's run directory; --annotations replaces the YAML's masks.
    plain = _resolved_seg(monkeypatch, "--images", "imgs", "--masks", "m")
    assert plain == SegmentationConfig("imgs", masks="m", output="runs/segmentation")
    swapped = _resolved_seg(monkeypatch, "--images", "imgs", "--annotations", "a.json", "--config", str(path))
    assert (swapped.masks, swapped.annotations) == (None, "a.json")


def test_key_value_pairs_may_stand_on_both_sides_of_a_flag(monkeypatch, capsys):
    config = _resolved_seg(monkeypatch, "--images", "imgs", "lr=0.02", "--masks", "m", "steps=9", "--batch-size", "6",
                           "aux_loss=true")
    assert (config.lr, config.steps, config.aux_loss, config.batch_size) == (0.02, 9, True, 6)
    with pytest.raises(SystemExit):  # anything else left over is still refused, and named
        main(["train-seg", "--images", "imgs", "lr=0.02", "--masks", "m", "--bogus", "steps=9"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_train_seg_refuses_unknown_and_mistyped_options(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_seg_command, "train_segmenter", lambda config: pytest.fail("should not train"))
    base = ["train-seg", "--images", "imgs", "--masks", "m"]
    assert main([*base, "optimiser=adamw"]) == 2
    assert "unknown config option 'optimiser' (from command line); did you mean 'optimizer'?" in capsys.readouterr().err
    path = tmp_path / "run.yaml"
    path.write_text("stpes: 3\n")
    assert main([*base, "--config", str(path)]) == 2
    assert f"unknown config option 'stpes' (from {path}); did you mean 'steps'?" in capsys.readouterr().err
    assert main([*base, "steps=many"]) == 2
    assert "config steps expects a number, got 'many'" in capsys.readouterr().err


def test_train_changes_attention_fields_on_the_command_line_and_eval_rebuilds_them(tmp_path, one_thread, capsys):
    """``attn.radix=1`` trains resnest14d with radix 1 (other conv shapes than the zoo's radix 2),
    keeps the entry's other split-attention fields, and the checkpoint rebuilds that network."""
    from splitattn.training.inference import load_trained

    data = _tiny_folder(tmp_path / "folder")
    common = ["train", "--data", str(data), "--model", "resnest14d", "--image-size", "16", "--batch-size", "4",
              "--epochs", "1", "--device", "cpu", "--no-progress"]
    assert main([*common, "--output", str(tmp_path / "run"), "attn.radix=1", "attn.reduction=2"]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["attn"] == {"radix": 1, "reduction": 2}
    trained = load_trained(tmp_path / "run" / "last.pth")
    assert trained.model.model_args["attn"] == {"radix": 1, "reduction": 2}
    zoo = create_model("resnest14d", num_classes=2)
    ours = dict(trained.model.state_dict())
    assert any(ours[k].shape != v.shape for k, v in zoo.state_dict().items())  # a different network was trained
    assert torch.isfinite(trained.model(torch.rand(1, 3, 16, 16))).all()
    capsys.readouterr()
    assert main([*common, "--output", str(tmp_path / "bad"), "attn.raddix=4"]) == 2
    error = capsys.readouterr().err
    assert "SplitAttention has no field 'raddix' (did you mean 'radix'?)" in error
    assert not (tmp_path / "bad" / "last.pth").exists()
    assert main([*common, "--output", str(tmp_path / "bad"), "epochs.radix=4"]) == 2
    assert "config epochs is not a mapping" in capsys.readouterr().err

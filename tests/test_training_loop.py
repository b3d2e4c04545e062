"""The one training loop, resume rule and config base that every task shares (issue 21, "One loop").

Tiny models on random tensors: what is checked is the loop's own behaviour (exact resume after a
stop, passes, divergence, the resume rule), which the slower end-to-end tests of each task rely on.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from splitattn.detection.train import DetectionConfig
from splitattn.errors import DIVERGED, EXIT_STATUSES
from splitattn.segmentation.train import SegmentationConfig
from splitattn.training import TrainConfig, build_config
from splitattn.training.checkpoint import LAST, load_checkpoint
from splitattn.training.config import RunConfig
from splitattn.training.loop import (
    EXIT_DIVERGED,
    Checkpointing,
    LoopPlan,
    Optimisation,
    Task,
    TrainingDiverged,
    fit,
    report_diverged,
)
from splitattn.training.optim import warmup_cosine
from splitattn.training.resume import check_same_run
from splitattn.training.runtime import StopSignals, grad_scaler

CPU = torch.device("cpu")


class NoisyPoints(Dataset):
    """Points with fresh noise at every read: the global generator decides each batch, as augmentation does."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.full((3,), float(index)) + torch.randn(3)


class Regression(Task):
    """A linear model pulled towards noise around 0; records the passes it ends and can ask to stop after a step."""

    def __init__(self, stop_after: int | None = None, poison_at: int | None = None,
                 poison_grad_at: int | None = None) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(3, 1)
        self.stop_signals = StopSignals(lambda _: None)
        self.stop_after, self.poison_at, self.poison_grad_at = stop_after, poison_at, poison_grad_at
        self.passes: list[int] = []
        self.steps = 0

    def loss(self, batch: torch.Tensor, step: int):
        noise = 0.1 * torch.randn(len(batch), 1)  # the model's own sampling (dropout): the generators move on
        loss = (self.model(batch) + noise).pow(2).mean()
        if step == self.poison_grad_at:  # adds 0 to the loss, NaN to the gradient: d sqrt(u) / du at u = 0
            loss = loss + torch.sqrt(0 * self.model.weight.abs().sum())
        return (loss * float("nan") if step == self.poison_at else loss), {"mse": loss.item()}

    def after_step(self) -> None:
        self.steps += 1
        self.stop_signals.requested = self.steps == self.stop_after  # as a SIGTERM after that step

    def end_pass(self, index: int, save) -> None:
        self.passes.append(index)


def _run(task: Regression, tmp_path, steps: int = 10, state=None, every: int = 0, per_pass: int = 3):
    loader = DataLoader(NoisyPoints(), batch_size=4, shuffle=True, generator=torch.Generator())
    optimizer = torch.optim.SGD(task.model.parameters(), lr=0.002, momentum=0.9)
    optimisation = Optimisation(optimizer, warmup_cosine(optimizer, steps, 2), grad_scaler(CPU, False))
    checkpoint = Checkpointing(tmp_path / LAST, every, lambda step: {"note": f"at {step}"},
                               saved_step=state["step"] if state else None)
    plan = LoopPlan(steps, CPU, seed=3, per_pass=per_pass, log_every=0)
    return fit(task, loader, optimisation, plan, checkpoint=checkpoint, state=state, log=lambda _: None,
               stop_signals=task.stop_signals)


def test_a_stopped_run_resumes_mid_pass_to_the_same_weights_and_losses(tmp_path):
    whole_task = Regression()
    whole = _run(whole_task, tmp_path / "whole")
    assert whole_task.passes == [0, 1, 2], "10 steps of 3-batch passes end three passes"
    cut_task = Regression(stop_after=5)  # step 5: the middle of the second pass
    cut = _run(cut_task, tmp_path / "cut")
    assert cut.stopped and cut.step == 5
    state = load_checkpoint(tmp_path / "cut" / LAST)
    assert (state["step"], state["data_position"], state["note"]) == (5, [1, 2], "at 5")
    resumed_task = Regression()
    resumed = _run(resumed_task, tmp_path / "cut", state=state)
    assert resumed.start_step == 5 and resumed.step == 10 and not resumed.stopped
    assert cut.losses + resumed.losses == whole.losses  # the same batches, the same noise, the same steps
    for name, value in whole_task.model.state_dict().items():
        assert torch.equal(value, resumed_task.model.state_dict()[name]), name


def test_a_finished_pass_resumes_at_the_start_of_the_next(tmp_path):
    whole_task = Regression()
    whole = _run(whole_task, tmp_path / "whole", steps=7)
    _run(Regression(stop_after=3), tmp_path / "cut", steps=7)
    state = load_checkpoint(tmp_path / "cut" / LAST)
    assert state["data_position"] == [1, 0]  # the end of pass 0 is the start of pass 1
    resumed_task = Regression()
    resumed = _run(resumed_task, tmp_path / "cut", steps=7, state=state)
    assert resumed.losses == whole.losses[3:]
    assert resumed_task.passes == [1]


def test_a_non_finite_loss_stops_before_the_weights_change_and_names_the_kept_checkpoint(tmp_path):
    task = Regression(poison_at=5)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 5 of 10 \(mse [\d.e+-]+\): stopping\. "
                                               r"The last good checkpoint \(.*last\.pth, step 4\) is kept"):
        _run(task, tmp_path, every=2)
    assert load_checkpoint(tmp_path / LAST)["step"] == 4
    assert task.steps == 4


def test_a_non_finite_gradient_under_a_finite_loss_stops_before_the_weights_change(tmp_path):
    """Checked without gradient clipping too: a kernel can return non-finite gradients for a finite loss."""
    task = Regression(poison_grad_at=3)
    with pytest.raises(TrainingDiverged, match=r"the gradient norm is nan at step 3 of 10: stopping\. "
                                               r"The last good checkpoint \(.*last\.pth, step 2\) is kept"):
        _run(task, tmp_path, every=2)
    assert task.steps == 2 and all(torch.isfinite(p).all() for p in task.model.parameters())


def test_a_pass_shorter_than_planned_is_refused_not_merged_into_the_next(tmp_path):
    task = Regression()
    with pytest.raises(ValueError, match="pass 1 over the training data ended after 3 batches, but its length was "
                                         "planned as 4"):
        _run(task, tmp_path, per_pass=4)  # 12 points in batches of 4: 3 batches a pass
    assert task.passes == []


def test_every_command_reports_divergence_on_stderr_with_one_exit_status(capsys):
    assert report_diverged("train-det", TrainingDiverged("loss is nan at step 3")) == EXIT_DIVERGED == DIVERGED.code
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "splitattn train-det: error: loss is nan at step 3\n"
    assert TrainingDiverged.exit_status in EXIT_STATUSES  # listed in splitattn --help with the others


def test_every_task_config_shares_the_run_fields():
    shared = {f.name for f in dataclasses.fields(RunConfig)}
    assert {"batch_size", "optimizer", "seed", "amp", "device", "output", "resume", "checkpoint_every"} <= shared
    for config_class in (TrainConfig, DetectionConfig, SegmentationConfig):
        assert issubclass(config_class, RunConfig)
        assert set(RunConfig.RESUME_MAY_CHANGE) <= set(config_class.RESUME_MAY_CHANGE)


@pytest.mark.parametrize("config, changed, allowed", [
    (TrainConfig(output="run"), {"epochs": 3}, {"data": "elsewhere", "workers": 4}),
    (SegmentationConfig(images="i", masks="m", output="run"), {"lr": 0.5}, {"images": "moved", "log_every": 1}),
])
def test_one_resume_rule_names_the_field_that_differs(config, changed, allowed):
    saved = dataclasses.asdict(config)
    check_same_run("run/last.pth", dataclasses.replace(config, **allowed), saved)  # where data live may change
    (name, value), = changed.items()
    with pytest.raises(ValueError, match=rf"cannot resume from run/last\.pth: it was trained with "
                                         rf"{name}={saved[name]!r}, while this run asks for {name}={value!r}"):
        check_same_run("run/last.pth", dataclasses.replace(config, **changed), saved)


def test_a_dense_run_without_warmup_steps_resumes_as_one_with_its_default():
    config = SegmentationConfig(images="i", masks="m", steps=50, warmup_steps=None)
    check_same_run("last.pth", dataclasses.replace(config, warmup_steps=5), dataclasses.asdict(config))
    with pytest.raises(ValueError, match="warmup_steps=5, while this run asks for warmup_steps=6"):
        check_same_run("last.pth", dataclasses.replace(config, warmup_steps=6), dataclasses.asdict(config))


# A config.yaml that `splitattn train` wrote before the shared base (an earlier release's fields, in its order).
EARLIER_TRAIN_YAML = """\
data: digits
train_dir: null
val_dir: null
image_size: 16
crop_pct: 1.0
interpolation: bilinear
workers: 2
model: resnet18
pretrained: null
drop_rate: 0.0
drop_path_rate: 0.0
drop_block_rate: 0.0
zero_init_last: true
attn: {}
epochs: 2
batch_size: 16
lr: null
base_lr: 0.1
optimizer: adamw
momentum: 0.9
weight_decay: 0.0005
no_decay_bn_bias: true
warmup_epochs: 1.0
min_lr: 0.0
label_smoothing: 0.1
mixup: 0.0
cutmix: 0.0
auto_augment: false
rand_augment: false
random_resized_crop: false
hflip: false
ema: false
ema_decay: 0.9998
output: runs/earlier
seed: 7
deterministic: false
device: auto
amp: false
grad_checkpointing: false
channels_last: false
sync_bn: false
resume: false
progress: false
log: jsonl
max_steps_per_epoch: 3
"""


def test_a_config_yaml_of_an_earlier_run_still_loads(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(EARLIER_TRAIN_YAML)
    config = build_config(config_file=path)
    assert (config.optimizer, config.weight_decay, config.workers, config.seed, config.output) == (
        "adamw", 0.0005, 2, 7, "runs/earlier")  # the fields now in RunConfig keep their values
    assert (config.log_every, config.checkpoint_every) == (0, 0)  # new ones: classification's old behaviour

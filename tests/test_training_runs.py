"""Whole training runs: the quick start, torchrun, and surviving kills and bad losses."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from splitattn.cli import main as cli_main
from splitattn.layers import DropBlock2d
from splitattn.training import TrainConfig, TrainingDiverged
from splitattn.training.checkpoint import load_checkpoint, remove_partial_writes
from splitattn.training.metrics import read_jsonl
from splitattn.training.runtime import Runtime
from splitattn.training.trainer import Trainer

# Small runs for the process tests: 16 px digits, a few steps an epoch, one thread for repeatability.
SMALL_RUN = ["--model", "resnest14d", "--batch-size", "16", "--image-size", "16", "--seed", "1",
             "--deterministic", "--no-progress", "max_steps_per_epoch=8", "warmup_epochs=0.5"]


@pytest.fixture(scope="module")
def digits_root(digits) -> Path:
    """The session's digits (tests/conftest.py); the quick start writes its own, where a user's go."""
    return digits


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _train_cmd(digits_root: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "splitattn", "train", "--data", str(digits_root), "--output", str(output),
            *SMALL_RUN, *extra]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _assert_same_weights(a: Path, b: Path) -> None:
    first, second = _weights(a), _weights(b)
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def _wait_for_line(process: subprocess.Popen, prefix: str) -> list[str]:
    """Read the run's output (unbuffered: ``_env``) up to the line starting with ``prefix``, so a
    signal lands at a known step however fast this machine trains."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    process.wait()
    raise AssertionError(f"the run ended before printing {prefix!r}: {''.join(seen)}")



def test_torchrun_two_processes_write_one_run(tmp_path, digits_root, capsys):
    run = tmp_path / "ddp"
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", port,
               "-m", "splitattn", "train", "--data", str(digits_root), "--output", str(run), *SMALL_RUN,
               "--epochs", "2"]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # rank 1 wrote nothing
    assert records[-1]["val_images"] == 359  # both shards counted once
    assert result.stdout.count("epoch 2/2:") == 1
    assert result.stdout.count("finished:") == 1, "only rank 0 reports"
    assert sorted(p.name for p in run.iterdir()) == ["best.pth", "config.yaml", "curves.png", "last.pth",
                                                      "metrics.jsonl"]
    capsys.readouterr()
    assert cli_main(["eval", "--model", "resnest14d", "--checkpoint", str(run / "last.pth"),
                     "--data", str(digits_root / "val"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 359


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, digits_root) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted")
    result = subprocess.run(_train_cmd(digits_root, run, "--epochs", "3"), env=_env(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return run / "last.pth"


def test_sigkill_then_resume_ends_with_the_same_weights(tmp_path, digits_root, uninterrupted):
    run = tmp_path / "killed"
    process = subprocess.Popen(_train_cmd(digits_root, run, "--epochs", "3", "log_every=1"), env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_line(process, "step 10/24:")  # inside epoch 2: its progress is lost, epoch 1's checkpoint kept
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert load_checkpoint(run / "last.pth")["epoch"] >= 1
    result = subprocess.run(_train_cmd(digits_root, run, "--epochs", "3", "--resume"), env=_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resume:" in result.stdout
    _assert_same_weights(run / "last.pth", uninterrupted)


def test_sigterm_saves_mid_epoch_and_resumes_exactly(tmp_path, digits_root, uninterrupted):
    run = tmp_path / "terminated"
    process = subprocess.Popen(_train_cmd(digits_root, run, "--epochs", "3", "log_every=1"), env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = _wait_for_line(process, "step 10/24:")  # epoch 2 (8 steps each), step 2 done
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    output = "".join(seen) + output
    assert process.returncode == 0, output
    assert "saved" in output
    state = load_checkpoint(run / "last.pth")
    assert 0 < state["step_in_epoch"] < 8, "the save should be mid-epoch"
    assert state["epoch"] == 1, "one whole epoch done"
    result = subprocess.run(_train_cmd(digits_root, run, "--epochs", "3", "--resume"), env=_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_same_weights(run / "last.pth", uninterrupted)


KILL_DURING_WRITE = """
import sys, time, torch
from pathlib import Path
from splitattn.training.checkpoint import save_checkpoint
path = Path(sys.argv[1])
save_checkpoint({"epoch": 1, "weights": torch.ones(3)}, path)
def slow_save(obj, destination):
    with open(destination, "wb") as handle:
        handle.write(b"PK\\x03\\x04 half of a checkpoint")
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
torch.save = slow_save
save_checkpoint({"epoch": 2, "weights": torch.zeros(3)}, path)
"""


def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path):
    path = tmp_path / "last.pth"
    process = subprocess.Popen([sys.executable, "-c", KILL_DURING_WRITE, str(path)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "writing"
    process.kill()
    process.wait()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert remove_partial_writes(tmp_path) == 1  # what the next run cleans up
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, digits_root):
    config = TrainConfig(data=str(digits_root), model="resnet18", output=str(tmp_path / "run"), epochs=3,
                         batch_size=16, image_size=16, max_steps_per_epoch=4, progress=False)
    trainer = Trainer(config, Runtime(torch.device("cpu")))
    real, calls = trainer.criterion, []

    def poisoned(logits, targets):
        calls.append(1)
        loss = real(logits, targets)
        return loss * float("nan") if len(calls) > 5 else loss

    trainer.criterion = poisoned
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2, step 2.*last good checkpoint"):
        trainer.fit()
    state = load_checkpoint(tmp_path / "run" / "last.pth")
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_train_reports_divergence_as_the_dense_commands_do(tmp_path, digits_root, monkeypatch, capsys):
    """One report for every training command: the message on stderr, exit 3, nothing on stdout about it."""
    real = Trainer.loss

    def poisoned(self, batch, step):
        loss, parts = real(self, batch, step)
        return (loss * float("nan"), parts) if step == 3 else (loss, parts)

    monkeypatch.setattr(Trainer, "loss", poisoned)
    code = cli_main(["train", "--data", str(digits_root), "--output", str(tmp_path / "run"), "--model", "resnet18",
                     "--batch-size", "16", "--image-size", "16", "--epochs", "1", "--no-progress",
                     "max_steps_per_epoch=4", "checkpoint_every=1"])  # a checkpoint a step: no epoch needs to end
    captured = capsys.readouterr()
    assert code == 3
    assert re.fullmatch(r"splitattn train: error: loss is nan at epoch 1, step 3 of 4: stopping\. The last good "
                        r"checkpoint \(.*last\.pth, epoch 1, step 2\) is kept; lower the learning rate\.\n",
                        captured.err), captured.err
    assert "loss is nan" not in captured.out
    assert load_checkpoint(tmp_path / "run" / "last.pth")["step"] == 2


def test_amp_ema_channels_last_and_checkpointing_run_together(tmp_path, digits_root):
    # 32 px, not 16: at 16 px layer4's strided 3 x 3 conv sees a 1 x 1 map, where oneDNN's bfloat16
    # backward (torch 2.14, CPU) returns non-finite gradients in about one run in four
    config = TrainConfig(data=str(digits_root), model="seresnet18", output=str(tmp_path / "run"), epochs=1,
                         batch_size=16, image_size=32, max_steps_per_epoch=3, progress=False, amp=True, ema=True,
                         channels_last=True, grad_checkpointing=True, mixup=0.2, drop_block_rate=0.1)
    trainer = Trainer(config, Runtime(torch.device("cpu")))
    logits, labels = torch.randn(5, 10), torch.randint(0, 10, (5,))
    smoothed = torch.full((5, 10), 0.1 / 10).scatter_(1, labels[:, None], 0.9 + 0.1 / 10)
    torch.testing.assert_close(trainer.criterion(logits, labels), -(smoothed * logits.log_softmax(1)).sum(1).mean())
    record = trainer.fit()
    # DropBlock ramps with training progress: after 2 of 3 steps it is at 2/3 of its 0.1 target
    drop_blocks = [m for m in trainer.model.modules() if isinstance(m, DropBlock2d)]
    assert drop_blocks and all(m.drop_prob == pytest.approx(0.1 * 2 / 3) for m in drop_blocks)
    assert record["epoch"] == 1 and "ema_val_top1" in record
    assert "train_top1" not in record  # not meaningful with mixed targets
    logged = read_jsonl(tmp_path / "run" / "metrics.jsonl")[-1]
    assert logged["train_loss"] == record["train_loss"] and logged["ema_val_top1"] == record["ema_val_top1"]
    assert "model_ema" in load_checkpoint(tmp_path / "run" / "last.pth")


def test_label_smoothing_follows_the_config(tmp_path, digits_root):
    """The loss the trainer minimises spreads ``label_smoothing`` over all classes (0: plain cross-entropy)."""
    logits, labels = torch.randn(5, 10), torch.randint(0, 10, (5,))
    for epsilon in (0.0, 0.3):
        config = TrainConfig(data=str(digits_root), model="resnet18", output=str(tmp_path / f"run{epsilon}"),
                             image_size=16, label_smoothing=epsilon, progress=False)
        criterion = Trainer(config, Runtime(torch.device("cpu"))).criterion
        target = torch.full((5, 10), epsilon / 10).scatter_(1, labels[:, None], 1 - epsilon + epsilon / 10)
        torch.testing.assert_close(criterion(logits, labels), -(target * logits.log_softmax(1)).sum(1).mean())


def test_sync_bn_is_refused_on_cpu(tmp_path, digits_root):
    config = TrainConfig(data=str(digits_root), model="resnet18", output=str(tmp_path / "run"), sync_bn=True)
    with pytest.raises(ValueError, match="sync_bn needs CUDA"):
        Trainer(config, Runtime(torch.device("cpu")))

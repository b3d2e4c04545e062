"""Accuracy, per-epoch metric logs (JSON lines) and the loss/accuracy plot of a run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many samples have their label among the top k predictions, for each k."""
    k_max = min(max(ks), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hits = top.eq(targets.unsqueeze(1))
    return [int(hits[:, : min(k, k_max)].any(dim=1).sum()) for k in ks]


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(records: list[dict[str, Any]], path: Path) -> Path:
    """Loss and accuracy against epoch, train and validation, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    figure, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    # One colour per series in both panels: train blue, validation orange, EMA green.
    train, val, ema = "tab:blue", "tab:orange", "tab:green"
    loss_ax.plot(epochs, [r["train_loss"] for r in records], color=train, label="train")
    loss_ax.plot(epochs, [r["val_loss"] for r in records], color=val, label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    if all("train_top1" in r for r in records):  # not under mixup/cutmix, where it means nothing
        acc_ax.plot(epochs, [r["train_top1"] for r in records], color=train, label="train top-1")
    acc_ax.plot(epochs, [r["val_top1"] for r in records], color=val, label="validation top-1")
    if all("ema_val_top1" in r for r in records):
        acc_ax.plot(epochs, [r["ema_val_top1"] for r in records], color=ema, label="EMA validation top-1")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for axis in (loss_ax, acc_ax):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

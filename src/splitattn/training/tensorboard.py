"""TensorBoard event files beside ``metrics.jsonl``, for users who watch training there.

Written through ``torch.utils.tensorboard`` (which needs the ``tensorboard`` package, an optional
extra: ``pip install 'splitattn[tensorboard]'``), into ``RUN_DIR/tensorboard``; one of the
trackers of ``training.trackers``. Only what a run
already computes is logged: per-step loss and learning rate, per-epoch metrics, the curves picture
and a few validation images with what the model said about them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .trackers import FINISHED, TrackedRun, Tracker, finite, picture

SUBDIR = "tensorboard"


class TensorBoardLog(Tracker):
    """One run's event files; ``purge_step`` drops events a resumed run is about to write again."""

    def __init__(self, run_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.directory = Path(run_dir) / SUBDIR
        self.writer = SummaryWriter(str(self.directory), purge_step=purge_step)

    @classmethod
    def from_run(cls, run: TrackedRun) -> TensorBoardLog:
        """The event files of ``run``; a resumed run rewrites the steps after its checkpoint."""
        return cls(run.directory, purge_step=run.start_step + 1 if run.resumed else None)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in finite(values).items():
            self.writer.add_scalar(tag, value, step)

    def step(self, values: Mapping[str, float], step: int) -> None:
        self.scalars(values, step)

    def metrics(self, values: Mapping[str, float], step: int, epoch: int | None = None) -> None:
        """At the epoch on the x axis for runs counted in epochs (``epoch/val_top1`` at 1, 2 ...), else the step."""
        self.scalars(values, epoch if epoch is not None else step)

    def image(self, tag: str, image: torch.Tensor | np.ndarray, step: int, epoch: int | None = None) -> None:
        """A (3, H, W) float image in [0, 1] or uint8, or (H, W, 3/4) as PIL and matplotlib give; at
        the epoch when given, as the metrics."""
        self.writer.add_image(tag, picture(image), epoch if epoch is not None else step, dataformats="HWC")

    def picture(self, tag: str, path: Path, step: int) -> None:
        """A PNG written by the run (curves.png)."""
        from PIL import Image

        with Image.open(path) as picture:
            self.image(tag, np.asarray(picture.convert("RGB")), step)

    def artefact(self, path: Path, kind: str, step: int, epoch: int | None = None) -> None:
        """The curves as a picture (at the epoch, as the metrics); TensorBoard keeps no other files."""
        if kind == "curves":
            self.picture("curves", path, epoch if epoch is not None else step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self, status: str = FINISHED) -> None:
        self.writer.close()


def unnormalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalised (N, 3, H, W) model inputs back to [0, 1] pictures."""
    mean_t = torch.tensor(mean, dtype=images.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype).view(1, -1, 1, 1)
    return (images.cpu() * std_t + mean_t).clamp(0, 1)


def prediction_grid(images: torch.Tensor, labels: Sequence[int], logits: torch.Tensor,
                    class_names: Sequence[str]) -> np.ndarray:
    """A grid of [0, 1] images, each titled with the prediction, its probability and the truth (H, W, 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probabilities = logits.float().softmax(dim=1)
    count = len(images)
    columns = min(count, 4)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.6 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        axis.imshow(images[index].permute(1, 2, 0).numpy())
        predicted = int(probabilities[index].argmax())
        right = predicted == int(labels[index])
        axis.set_title(f"{class_names[predicted]} {100 * float(probabilities[index, predicted]):.0f}%\n"
                       f"true: {class_names[int(labels[index])]}", color="green" if right else "red", fontsize=9)
    figure.tight_layout()
    figure.canvas.draw()
    picture = np.asarray(figure.canvas.buffer_rgba()).copy()
    plt.close(figure)
    return picture

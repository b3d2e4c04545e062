"""TensorBoard event files beside ``metrics.jsonl``, for users who watch training there.

Written through ``torch.utils.tensorboard`` (which needs the ``tensorboard`` package, an optional
extra: ``pip install 'splitattn[tensorboard]'``), into ``RUN_DIR/tensorboard``. Only what a run
already computes is logged: per-step loss and learning rate, per-epoch metrics, the curves picture
and a few validation images with what the model said about them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import SplitattnError

LOGS = ("jsonl", "tensorboard")
SUBDIR = "tensorboard"
INSTALL_HINT = "pip install 'splitattn[tensorboard]' (or pip install tensorboard)"


def check_log(log: str) -> bool:
    """Validate a ``log`` setting before a run starts; True when TensorBoard files are wanted."""
    if log not in LOGS:
        raise SplitattnError(f"log must be one of {LOGS} (metrics.jsonl is always written), got {log!r}")
    if log != "tensorboard":
        return False
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise SplitattnError(f"--log tensorboard needs the tensorboard package, which is not installed: "
                             f"{INSTALL_HINT}") \
            from None
    return True


class TensorBoardLog:
    """One run's event files; ``purge_step`` drops events a resumed run is about to write again."""

    def __init__(self, run_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.directory = Path(run_dir) / SUBDIR
        self.writer = SummaryWriter(str(self.directory), purge_step=purge_step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            if value is not None and math.isfinite(float(value)):
                self.writer.add_scalar(tag, float(value), step)

    def image(self, tag: str, image: torch.Tensor | np.ndarray, step: int) -> None:
        """A (3, H, W) float image in [0, 1] or uint8, or (H, W, 3/4) as PIL and matplotlib give."""
        array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        layout = "HWC" if array.ndim == 3 and array.shape[-1] in (3, 4) and array.shape[0] not in (3, 4) else "CHW"
        if layout == "HWC" and array.shape[-1] == 4:
            array = array[..., :3]
        self.writer.add_image(tag, array, step, dataformats=layout)

    def picture(self, tag: str, path: Path, step: int) -> None:
        """A PNG written by the run (curves.png)."""
        from PIL import Image

        with Image.open(path) as picture:
            self.image(tag, np.asarray(picture.convert("RGB")), step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
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

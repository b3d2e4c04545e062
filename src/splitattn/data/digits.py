"""The built-in data set: scikit-learn's handwritten digits, written out as an image folder.

1,797 real 8 x 8 scans of digits 0-9 ship inside scikit-learn, so a new user can run the whole
pipeline (image files, decoding, augmentation, training, evaluation) with nothing to download.
Writing them as PNG files under ``train/`` and ``val/`` means they go through exactly the code
path a user's own ImageFolder takes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from filelock import FileLock
from PIL import Image

DIGITS_ENV = "SPLITATTN_DATA"
VAL_FRACTION = 0.2
UPSCALE = 32  # stored size; training resizes again as configured
COMPLETE = ".complete"  # marks a finished folder


def default_root() -> Path:
    base = os.environ.get(DIGITS_ENV) or Path.home() / ".cache" / "splitattn"
    return Path(base) / "digits"


def prepare_digits(root: str | os.PathLike | None = None, seed: int = 0) -> Path:
    """Write the digits as ``root/{train,val}/<digit>/<index>.png`` once; return ``root``.

    The split is stratified and fixed by ``seed`` (20% validation). A reader never sees half a data
    set: the files are written into a sibling folder that is renamed to ``root`` when complete, and
    writers take a lock beside ``root`` first, so a second run started at the same time waits for the
    first one's copy instead of racing it (two writers clearing the same stale folder is what the
    lock prevents: one's ``rmtree`` would meet the other's renamed copy).

    Args:
        root: the folder to write; default ``$SPLITATTN_DATA/digits`` or ``~/.cache/splitattn/digits``.
        seed: fixes which images go to validation.
    """
    root = Path(root) if root is not None else default_root()
    if (root / COMPLETE).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(root.parent / f".{root.name}.lock"):
        if (root / COMPLETE).is_file():  # another process wrote it while this one waited
            return root
        if root.exists():
            shutil.rmtree(root)  # left by an interrupted write of an earlier version, which wrote in place
        partial = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
        try:
            _write_digits(partial, seed)
            partial.rename(root)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return root


def _write_digits(folder: Path, seed: int) -> None:
    from sklearn.datasets import load_digits  # only writing this data set needs scikit-learn (slow to import)

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).astype(np.uint8)
    rng = np.random.default_rng(seed)
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        n_val = round(len(indices) * VAL_FRACTION)
        for split, chosen in (("val", indices[:n_val]), ("train", indices[n_val:])):
            target = folder / split / str(label)
            target.mkdir(parents=True, exist_ok=True)
            for index in chosen:
                image = Image.fromarray(images[index], mode="L").resize((UPSCALE, UPSCALE), Image.BILINEAR)
                image.save(target / f"{index:04d}.png")
    (folder / COMPLETE).write_text("scikit-learn digits, 20% stratified validation split\n")

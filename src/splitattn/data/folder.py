"""Image folders as users have them: ``root/<class>/<image>``, with the mess real folders contain.

Problems that would stop a run are found before training starts (missing or empty directory, a
class folder with no images). Problems that only spoil a few files (zero-byte, truncated or
undecodable images) are skipped, counted and named (:mod:`.skips`), never a crash in the middle
of an epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from torch.utils.data import Dataset

from .decode import ZERO_BYTES, read_or_skip
from .errors import DataError
from .image_files import IMAGE_EXTENSIONS, image_files_under
from .skips import SkippedSample


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` files with integer labels in sorted class order.

    ``class_names`` fixes the label order (pass the training set's to the validation set);
    ``skipped_files`` names the zero-byte files dropped while scanning. ``__getitem__`` returns
    a :class:`SkippedSample` (path and reason) for an unreadable image; :func:`~splitattn.data.collate_skipping`
    drops those and passes their records on.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        if not self.root.exists():
            raise DataError(f"data directory {str(self.root)!r} does not exist")
        if not self.root.is_dir():
            raise DataError(f"data directory {str(self.root)!r} is not a directory")
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not found:
            raise DataError(
                f"data directory {str(self.root)!r} has no class folders; expected {self.root}/<class>/<image>"
            )
        if class_names is not None and set(found) != set(class_names):
            raise DataError(
                f"class folders in {str(self.root)!r} differ from the training classes: "
                f"missing {sorted(set(class_names) - set(found))}, extra {sorted(set(found) - set(class_names))}"
            )
        self.class_names = list(class_names) if class_names is not None else found
        self.samples: list[tuple[Path, int]] = []
        self.skipped_files: list[SkippedSample] = []
        empty_classes = []
        for label, name in enumerate(self.class_names):
            nonempty, empty = image_files_under(self.root / name)
            self.skipped_files += [SkippedSample(str(p), ZERO_BYTES) for p in empty]
            if not nonempty:
                empty_classes.append(name)
            self.samples.extend((p, label) for p in nonempty)
        if empty_classes:
            raise DataError(
                f"class folder(s) {empty_classes} in {str(self.root)!r} contain no images "
                f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
            )

    @property
    def skipped_empty(self) -> int:
        """How many zero-byte files the scan dropped."""
        return len(self.skipped_files)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        image = read_or_skip(path, self.transform)
        return image if isinstance(image, SkippedSample) else (image, label)

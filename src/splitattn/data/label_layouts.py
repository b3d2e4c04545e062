"""Which class each evaluation image is, for every way validation sets are laid out on disk.

A validation folder says its labels in one of a few ways, each a :class:`FolderLayout` of the
table :data:`FOLDER_LAYOUTS`:

- ``names``: class folders named by the model's own class names (a fine-tuned model's folders);
- ``synsets``: folders named by WordNet id (ImageNet's val set, ImageNet-Sketch, -A, -R);
- ``indices``: folders named by output index (ImageNet-V2's ``0`` ... ``999``);
- ``lemmas``: classes named by all their WordNet words, "tench, Tinca tinca" (the ``ClassLabel``
  names of Hugging Face's ``imagenet-1k``).

Labels come from the folder's *name*, never its position among the folders, so a folder holding
any subset of the classes is scored correctly. Anything else (the original archive's flat val
folder) is labelled by a CSV of ``file,class`` (:func:`labels_from_csv`), and ImageNet-ReaL by its
JSON of label sets (:func:`real_label_sets`).
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from ..models.classes import ClassList
from .errors import DataError


class FolderLayout(Protocol):
    """One way of naming class folders: how a folder name maps to the model's output index."""

    name: str
    description: str

    def keys(self, classes: ClassList) -> Sequence[str]:
        """Every folder name this layout knows for the model (for did-you-mean)."""

    def label(self, folder: str, classes: ClassList) -> int | None:
        """The output index a folder named ``folder`` holds, None where this layout does not know it."""


@dataclass(frozen=True)
class ByClassKey:
    """Folders named by one of the model's lists of class keys (``ClassList.names``, ``.synsets``,
    ``.lemmas``); a key two classes share ("crane") labels neither."""

    name: str
    description: str
    field: str  # the ClassList attribute

    def keys(self, classes: ClassList) -> Sequence[str]:
        return getattr(classes, self.field) or ()

    def label(self, folder: str, classes: ClassList) -> int | None:
        keys = self.keys(classes)
        return keys.index(folder) if folder in keys and keys.count(folder) == 1 else None


@dataclass(frozen=True)
class ByIndex:
    name: str = "indices"
    description: str = "folders named by class index (0 ... N-1), as ImageNet-V2"

    def keys(self, classes: ClassList) -> Sequence[str]:
        return [str(i) for i in range(len(classes))]

    def label(self, folder: str, classes: ClassList) -> int | None:
        return int(folder) if folder.isdigit() and int(folder) < len(classes) else None


FOLDERS = "class folder(s)"  # what folder_labels names by default; other sources name "class(es)"

# Tried in this order when the layout is not given: a model's own names first (a fine-tuned model whose
# classes are called "3" means its folder "3", not output 3).
FOLDER_LAYOUTS: dict[str, FolderLayout] = {
    layout.name: layout for layout in (
        ByClassKey("names", "folders named by the model's class names", "names"),
        ByClassKey("synsets", "folders named by WordNet synset (n01440764), as ImageNet's val set and -Sketch/-A/-R",
                   "synsets"),
        ByIndex(),
        ByClassKey("lemmas", "classes named by all their words ('tench, Tinca tinca'), as Hugging Face's "
                             "imagenet-1k", "lemmas"))}


def folder_labels(folders: Sequence[str], classes: ClassList, layout: str = "auto",
                  root: str | os.PathLike = ".", what: str = FOLDERS) -> tuple[str, dict[str, int]]:
    """The layout of ``folders`` and the output index of each.

    Args:
        folders: the class folder names found in ``root``.
        classes: the model's classes.
        layout: a key of :data:`FOLDER_LAYOUTS`, or ``"auto"``: the first that knows every folder.
        root: the data directory (or the source the names come from), for messages.
        what: what the names are, for messages (a shard set's or dataset's "class(es)").

    Raises:
        DataError: folders the layout does not know, named with close matches; with ``"auto"``,
            against the layout that knows the most of them.
    """
    if layout != "auto" and layout not in FOLDER_LAYOUTS:
        close = difflib.get_close_matches(layout, FOLDER_LAYOUTS, n=2, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise DataError(f"unknown label layout {layout!r}.{hint} Known: auto, {', '.join(FOLDER_LAYOUTS)}")
    candidates = list(FOLDER_LAYOUTS.values()) if layout == "auto" else [FOLDER_LAYOUTS[layout]]
    for candidate in candidates:
        labels = {folder: candidate.label(folder, classes) for folder in folders}
        if all(label is not None for label in labels.values()):
            return candidate.name, labels  # type: ignore[return-value]
    best = max(candidates, key=lambda c: sum(c.label(f, classes) is not None for f in folders))
    unknown = [f for f in folders if best.label(f, classes) is None]
    keys = best.keys(classes)
    hints = []
    for folder in unknown[:5]:
        close = difflib.get_close_matches(folder, keys, n=1, cutoff=0.6)
        hints.append(f"{folder!r} (did you mean {close[0]!r}?)" if close else repr(folder))
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    tried = "; ".join(c.description for c in candidates)
    other = "; for another layout give a labels CSV of file,class" if what == FOLDERS else ""
    raise DataError(f"{len(unknown)} {what} in {os.fspath(root)!r} are not classes of the model: "
                    f"{', '.join(hints)}{more}. Expected {tried} ({len(classes)} classes){other}")


def labels_by_name(source_names: Sequence[str], class_names: Sequence[str], where: str) -> list[int]:
    """Source label -> label in ``class_names``, matched by name: a validation split may order its
    classes otherwise than the training set, or hold only some of them.

    Args:
        source_names: the classes the source's labels refer to, in its order.
        class_names: the labels wanted (the training set's classes).
        where: the source, for the message.

    Raises:
        DataError: classes of the source that ``class_names`` lacks, named.
    """
    unknown = sorted(set(source_names) - set(class_names))
    if unknown:
        raise DataError(f"{where} holds classes the training set does not: {unknown[:10]}"
                        f"{' ...' if len(unknown) > 10 else ''}")
    target = {name: i for i, name in enumerate(class_names)}
    return [target[name] for name in source_names]


def _file_keys(relative: str) -> list[str]:
    """The names a labels file may use for an image: its path under the root, with or without extension."""
    path = PurePosixPath(relative)
    return [str(path), str(path.with_suffix("")), path.name, path.stem]


def labels_from_csv(csv_path: str | os.PathLike, files: Sequence[str], classes: ClassList) -> tuple[list[int],
                                                                                                   list[str]]:
    """Labels of ``files`` (paths relative to the data root) from a CSV of ``file,class``.

    ``file`` is the image's path under the root, with or without its extension, or its bare name
    where that is unique; ``class`` a synset, a class name or an index. A first row whose class is
    no class is a header. A class field of several words whose first is a synset is read as that
    synset (the archive's ``LOC_val_solution.csv``: ``n01751748 1 2 3 4 ...``).

    Args:
        csv_path: the labels file.
        files: the images found on disk, as paths relative to the data root.
        classes: the model's classes, which every ``class`` field must name.

    Returns:
        the label of each of ``files``, and the CSV's files that are not on disk.

    Raises:
        DataError: a row with an unknown class (its line, and what was expected), an image on disk
            the CSV does not label (the first few, and how many), or an empty CSV.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise DataError(f"labels file {os.fspath(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    index: dict[str, int] = {}
    ambiguous: set[str] = set()
    for position, relative in enumerate(files):
        for key in _file_keys(relative):
            if key in index and index[key] != position:
                ambiguous.add(key)
            index[key] = position
    for key in ambiguous:
        del index[key]
    labels: list[int | None] = [None] * len(files)
    missing: list[str] = []
    for line, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise DataError(f"{path}:{line}: expected file,class, got {','.join(row)!r}")
        name, value = row[0].strip().removeprefix("./"), row[1].strip()
        words = value.split()
        if len(words) > 1 and words[0] in (classes.synsets or ()) and not classes.knows(value):
            value = words[0]
        position = index.get(name)
        if not classes.knows(value):
            if line == 1 and position is None:
                continue  # a header
            try:
                classes.index_of(value)
            except ValueError as error:
                raise DataError(f"{path}:{line}: {error}") from None
        if position is None:
            missing.append(name)
            continue
        labels[position] = classes.index_of(value)
    if not rows:
        raise DataError(f"labels file {os.fspath(path)!r} is empty; expected rows of file,class")
    unlabelled = [files[i] for i, label in enumerate(labels) if label is None]
    if unlabelled:
        raise DataError(f"{len(unlabelled)} image(s) on disk have no row in {os.fspath(path)!r}: "
                        f"{', '.join(unlabelled[:5])}{' ...' if len(unlabelled) > 5 else ''}")
    return [int(label) for label in labels], missing  # type: ignore[arg-type]


REAL_FILE = re.compile(r"ILSVRC2012_val_(\d{8})")


def real_label_sets(json_path: str | os.PathLike, files: Sequence[str], classes: ClassList) -> list[frozenset[int]]:
    """ImageNet-ReaL's label set of each of ``files``, found by the val file number in its name.

    The JSON is a list of 50,000 lists of class indices, entry ``i`` for
    ``ILSVRC2012_val_{i + 1:08d}.JPEG`` (an empty list: no class fits the image; such images
    are left out of the score).

    Args:
        json_path: ImageNet-ReaL's ``real.json``.
        files: the images to label, as paths relative to the data root (any folders above them).
        classes: the model's classes (the indices must be below their count).

    Raises:
        DataError: a file whose name carries no val number, a number beyond the list, or a JSON
            that is not a list of lists of indices below the model's class count.
    """
    path = Path(json_path)
    try:
        sets = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read ImageNet-ReaL labels {os.fspath(path)!r}: {error}") from None
    valid = isinstance(sets, list) and all(
        isinstance(s, list) and all(isinstance(i, int) and 0 <= i < len(classes) for i in s) for s in sets)
    if not valid:
        raise DataError(f"{os.fspath(path)!r} is not ImageNet-ReaL's labels: expected a JSON list of lists of class "
                        f"indices (0..{len(classes) - 1}), one per val image")
    result = []
    for relative in files:
        match = REAL_FILE.search(PurePosixPath(relative).name)
        if match is None:
            raise DataError(f"{relative!r} is not named as an ImageNet val image (ILSVRC2012_val_00000001.JPEG), "
                            f"so {os.fspath(path)!r} cannot label it")
        number = int(match.group(1))
        if not 1 <= number <= len(sets):
            raise DataError(f"{relative!r}: val image {number} is beyond the {len(sets)} entries of "
                            f"{os.fspath(path)!r}")
        result.append(frozenset(sets[number - 1]))
    return result

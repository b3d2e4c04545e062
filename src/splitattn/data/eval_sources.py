"""Evaluation sources: any ``--data`` of ``splitattn eval``, its labels mapped to the model's outputs.

A folder, a shard set and a Hugging Face dataset each name their classes in their own way: class
folders, an info file's ``class_names``, a ``ClassLabel``'s names, or bare indices. They are all
read by the layouts of :mod:`.label_layouts` (the model's names, WordNet synsets, output indices),
so ImageNet shards whose classes are synsets or indices are scored against a model whose outputs
are named "tench", and any subset of the model's classes may be present. A folder is scanned by
:mod:`.eval_set`, which also takes a labels CSV and ImageNet-ReaL's label sets.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image
from torch.utils.data import IterableDataset, Subset

from ..interface import option
from ..models.classes import ClassList
from .batches import KeyedBatch, collate_keyed
from .digits import prepare_digits
from .errors import DataError
from .eval_set import scan_eval_set
from .label_layouts import folder_labels
from .skips import SkippedSample
from .source_options import SourceOptions
from .sources import VAL_FOLDERS, DataSource, open_source, source_kind


class LabelledImage(NamedTuple):
    """One sample of :meth:`EvalSource.samples`: the decoded image, the model's label, the sample's key."""

    image: Image.Image
    label: int
    key: str


@dataclass
class EvalSource:
    """An evaluation source for ``splitattn eval --data``, its labels mapped to the model's outputs.

    ``dataset(transform)`` is what a DataLoader reads (items (tensor, label, key) or
    :class:`SkippedSample`, the source's own labels), ``collate`` batches it into
    :class:`~splitattn.data.KeyedBatch` es with the model's labels (``label_map``: source label ->
    model output; None: they are the model's already); ``samples()`` iterates without a loader.
    ``layout`` says how the source's class names were read (:mod:`.label_layouts`);
    ``classes_held`` the model outputs its labels use (None: it has no labels, as ReaL-only folders);
    ``label_sets`` ImageNet-ReaL's label set by sample key; ``not_on_disk`` labelled files not found.
    """

    source: DataSource
    class_names: list[str]
    label_map: tuple[int, ...] | None = None
    layout: str = "names"
    classes_held: frozenset[int] | None = None
    label_sets: Mapping[str, frozenset[int]] | None = None
    not_on_disk: list[str] = field(default_factory=list)

    @property
    def num_samples(self) -> int | None:
        return self.source.num_samples

    @property
    def collate(self) -> Callable[[list], KeyedBatch]:
        """The DataLoader's ``collate_fn`` (picklable, for loader workers)."""
        return functools.partial(collate_keyed, label_map=self.label_map)

    def dataset(self, transform: Callable | None, workers: int = 0, world: int = 1, rank: int = 0) -> Any:
        """What a DataLoader with ``workers`` loader processes reads (``rank`` of ``world`` evaluating
        processes: a stream reads its share; an indexed set is shared with a ``Subset``, as training does)."""
        data = self.source.dataset(transform, self.source.class_names, training=False, seed=0, keyed=True)
        if isinstance(data, IterableDataset):
            data.configure(world, rank, workers)
        elif world > 1:
            data = Subset(data, range(rank, len(data), world))
        return data

    def samples(self) -> Iterator[LabelledImage | SkippedSample]:
        """Each sample once, in the source's order: a :class:`LabelledImage` (the model's label), or
        the skipped record."""
        data = self.dataset(None)
        items = iter(data) if isinstance(data, IterableDataset) else (data[i] for i in range(len(data)))
        for item in items:
            if isinstance(item, SkippedSample):
                yield item
            else:
                image, label, key = item
                yield LabelledImage(image, self.label_map[label] if self.label_map is not None else label, key)


@dataclass(frozen=True)
class EvalRequest:
    """What ``open_eval_source`` is asked besides the spec: the model's classes and how to label."""

    classes: ClassList | None
    layout: str = "auto"
    labels_csv: str | None = None
    real_labels: str | None = None


def _eval_folder(spec: str, options: SourceOptions, request: EvalRequest) -> EvalSource:
    """A folder is scanned for evaluation itself: any subset of classes, a labels CSV, ReaL's labels.
    Its ``val/`` (or the split named) is read when it also has ``train/``, as :func:`open_source` does."""
    root = prepare_digits() if spec == "digits" else Path(spec)
    if options.split:
        root = root / options.split
    elif (root / "train").is_dir():
        root = next((root / name for name in VAL_FOLDERS if (root / name).is_dir()), root)
    classes = request.classes
    if classes is None:  # the folder's own classes
        classes = ClassList(tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
                            if root.is_dir() else ())
    found = scan_eval_set(root, classes, request.layout, request.labels_csv, request.real_labels)
    return EvalSource(found, found.class_names, layout=found.layout,
                      classes_held=frozenset(found.labels) if found.labels is not None else None,
                      label_sets=found.label_sets, not_on_disk=found.not_on_disk)


def _eval_named(spec: str, options: SourceOptions, request: EvalRequest) -> EvalSource:
    """Shards and datasets name their classes; those names are read as a folder's would be."""
    given = [flag for flag, value in (("labels_csv", request.labels_csv), ("real_labels", request.real_labels))
             if value is not None]
    if given:
        raise DataError(f"{option(given[0], 'FILE')} labels the image files of a folder; {spec!r} is a "
                        f"{source_kind(spec).name} source, whose samples carry their labels")
    if request.classes is not None and options.num_classes is None:  # unnamed classes are the model's outputs
        options = replace(options, num_classes=len(request.classes))
    source = open_source(spec, "val", options)
    classes = request.classes if request.classes is not None else ClassList(tuple(source.class_names))
    used, by_name = folder_labels(source.class_names, classes, request.layout, source.where, "class(es)")
    label_map = tuple(by_name[name] for name in source.class_names)
    return EvalSource(source, list(classes.names), label_map, used, frozenset(label_map))


# How each kind of source of :data:`~splitattn.data.sources.SOURCE_KINDS` is opened for evaluation.
EVAL_OPENERS: dict[str, Callable[[str, SourceOptions, EvalRequest], EvalSource]] = {
    "hf": _eval_named, "shards": _eval_named, "folder": _eval_folder}


def open_eval_source(spec: str, class_names: ClassList | Sequence[str] | None = None,
                     options: SourceOptions | None = None, layout: str = "auto", labels_csv: str | None = None,
                     real_labels: str | None = None) -> EvalSource:
    """A source to evaluate a model on, its labels in the model's class order.

    Args:
        spec: as for :func:`open_source`; a shard set or dataset gives its validation split (a
            shard pattern or ``split=`` given is read as it is); a folder is read as
            ``DIR/<class>/<image>`` (its ``val/`` when it has ``train/`` too), or images anywhere
            below it labelled by ``labels_csv`` or ``real_labels``.
        class_names: the model's classes (a :class:`~splitattn.models.classes.ClassList`, with
            synsets where they are ImageNet's, or their names). The source's class names are
            mapped to them by ``layout``, and a class the model does not know is an error naming
            it. None: the source's own.
        options: as for :func:`open_source`.
        layout: how the source names its classes, a key of
            :data:`~splitattn.data.label_layouts.FOLDER_LAYOUTS` (the model's names, synsets,
            indices), or ``"auto"``: the first that knows them all.
        labels_csv: a CSV of ``file,class`` labelling a folder's images (folders only).
        real_labels: ImageNet-ReaL's JSON of label sets (folders only).

    Raises:
        DataError: a source that cannot be opened, classes the model does not know, label files
            for a source that is not a folder.
    """
    classes = (class_names if isinstance(class_names, ClassList) or class_names is None
               else ClassList(tuple(class_names)))
    request = EvalRequest(classes, layout, labels_csv, real_labels)
    return EVAL_OPENERS[source_kind(spec).name](spec, options or SourceOptions(), request)

"""What every data source kind is told besides its spec: split, columns, streaming, shuffling.

One record, filled from the training config (or by ``splitattn eval``), so that a kind reads the
options it understands and the others pass through it unused.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..interface import option
from .errors import DataError

ROLES = ("train", "val")
DEFAULT_SPLITS = {"train": ("train",), "val": ("validation", "val")}  # tried in order when no split is named


@dataclass(frozen=True)
class SourceOptions:
    """Options of :func:`splitattn.data.open_source`.

    ``split``: the split to read (a Hugging Face split, a split of a shard set's info file);
    None takes the role's usual name (``train``; ``validation`` or ``val``). ``image_column`` and
    ``label_column``: a Hugging Face dataset's columns (None: its ``Image`` and ``ClassLabel``
    features). ``streaming``: stream a Hugging Face dataset instead of downloading it.
    ``hf_options``: keyword arguments for ``datasets.load_dataset`` (``name``, ``data_dir``,
    ``revision``...). ``shard_info``: a shard set's info file when it is not ``_info.json``
    beside the shards. ``num_classes``: for sources that do not name their classes.
    ``shuffle_buffer``: samples a stream mixes at a time. ``num_samples``: the length of a
    streamed dataset that does not declare it (timm's ``--train-num-samples``).
    """

    split: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    streaming: bool = False
    hf_options: Mapping[str, Any] = field(default_factory=dict)
    shard_info: str | None = None
    num_classes: int | None = None
    shuffle_buffer: int = 1000
    num_samples: int | None = None

    def __post_init__(self) -> None:
        if self.shuffle_buffer < 1:
            raise DataError(f"shuffle_buffer must be at least 1 (1: no shuffling), got {self.shuffle_buffer}")
        if self.num_classes is not None and self.num_classes < 1:
            raise DataError(f"num_classes must be at least 1, got {self.num_classes}")


def choose_split(available: Sequence[str], wanted: str | None, role: str, where: str) -> str:
    """The split to read among ``available``: ``wanted``, or the role's usual name.

    Args:
        available: the source's split names.
        wanted: the split asked for (None: the first of ``DEFAULT_SPLITS[role]`` present).
        role: ``train`` or ``val``.
        where: the source, for the message.
    """
    if wanted is not None:
        if wanted in available:
            return wanted
        close = difflib.get_close_matches(wanted, list(available), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{where} has no split {wanted!r}: it has {sorted(available)}{hint}")
    for name in DEFAULT_SPLITS[role]:
        if name in available:
            return name
    raise DataError(f"{where} has no {' or '.join(repr(n) for n in DEFAULT_SPLITS[role])} split for {role}: "
                    f"it has {sorted(available)}; name one with {option(f'{role}_split', 'NAME')}")

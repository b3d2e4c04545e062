"""Where predictions go: a CSV or JSON-lines file chosen by its suffix, or text on a terminal.

One writer per format, in one table (``OUTPUT_FORMATS``): a new format is a new entry, not a new
branch. Files are written through a temporary file renamed at the end, so an interrupted run
never leaves a half-written ``predictions.csv`` that looks complete.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from ..errors import SplitattnError
from ..weights.checkpoint_io import atomic_write
from .prediction import ImagePrediction


class PredictionWriter(Protocol):
    """Writes predictions of ``top_k`` classes each to an open text stream, one image at a time."""

    def write(self, prediction: ImagePrediction) -> None: ...


class CsvWriter:
    """One row per image: ``image, error``, then ``class_R, index_R, probability_R`` for ranks 1..top_k.

    Wide rather than one row per (image, rank), so that the file has a row per image, as a
    spreadsheet user expects; an unreadable image has its reason in ``error`` and empty ranks.
    """

    def __init__(self, stream: TextIO, top_k: int) -> None:
        self.top_k = top_k
        self.rows = csv.writer(stream)
        self.rows.writerow(["image", "error", *(f"{column}_{rank}" for rank in range(1, top_k + 1)
                                                for column in ("class", "index", "probability"))])

    def write(self, prediction: ImagePrediction) -> None:
        ranks = [value for score in prediction.top for value in (score.name, score.index, f"{score.probability:.6g}")]
        self.rows.writerow([prediction.image, prediction.error or "",
                            *ranks, *[""] * (3 * self.top_k - len(ranks))])


class JsonlWriter:
    """One JSON object per line, as ``--json`` prints: ``{"image", "predictions": [...]}`` (+ ``"error"``)."""

    def __init__(self, stream: TextIO, top_k: int) -> None:
        self.stream = stream

    def write(self, prediction: ImagePrediction) -> None:
        self.stream.write(json.dumps(prediction.as_dict()) + "\n")


class TextWriter:
    """For a person at a terminal: the path, then one ``rank. class  percent`` line per class."""

    def __init__(self, stream: TextIO, top_k: int) -> None:
        self.stream = stream

    def write(self, prediction: ImagePrediction) -> None:
        lines = [prediction.image]
        if prediction.error is not None:
            lines.append(f"  unreadable: {prediction.error}")
        lines += [f"  {rank}. {score.name:<20} {100 * score.probability:6.2f}%"
                  for rank, score in enumerate(prediction.top, start=1)]
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()


@dataclass(frozen=True)
class OutputFormat:
    """A file format for predictions, recognised by its suffix."""

    suffix: str
    description: str
    writer: Callable[[TextIO, int], PredictionWriter]


OUTPUT_FORMATS = {fmt.suffix: fmt for fmt in (
    OutputFormat(".csv", "a row per image: image, error, class/index/probability per rank", CsvWriter),
    OutputFormat(".jsonl", "a JSON object per line, as --json prints", JsonlWriter),
)}


def output_format(path: str | os.PathLike) -> OutputFormat:
    """The format a predictions file is written in, from its suffix.

    Args:
        path: the file to write, e.g. ``predictions.csv``.

    Raises:
        ValueError: a suffix not in :data:`OUTPUT_FORMATS`, naming the known ones.
    """
    suffix = Path(path).suffix.lower()
    if suffix in OUTPUT_FORMATS:
        return OUTPUT_FORMATS[suffix]
    close = difflib.get_close_matches(suffix, list(OUTPUT_FORMATS), n=1, cutoff=0.6)
    hint = f"; did you mean {Path(path).with_suffix(close[0]).name!r}?" if close and suffix else ""
    known = ", ".join(f"{s} ({fmt.description})" for s, fmt in OUTPUT_FORMATS.items())
    raise SplitattnError(f"cannot tell the format of {str(path)!r} from its suffix {suffix or '(none)'!r}: "
                         f"known are {known}{hint}")


@dataclass
class PredictionSummary:
    """What a run wrote: how many images, and the unreadable ones with their reasons."""

    images: int = 0
    unreadable: list[ImagePrediction] = field(default_factory=list)


def write_all(writer: PredictionWriter, predictions: Iterable[ImagePrediction]) -> PredictionSummary:
    """Write every prediction with ``writer``; return the count and the unreadable images.

    Args:
        writer: one of the writers, e.g. ``TextWriter(sys.stdout, top_k)``.
        predictions: consumed as they are written, so a long run's results stream out.
    """
    summary = PredictionSummary()
    for prediction in predictions:
        writer.write(prediction)
        summary.images += 1
        if prediction.error is not None:
            summary.unreadable.append(prediction)
    return summary


def write_predictions(path: str | os.PathLike, predictions: Iterable[ImagePrediction],
                      top_k: int) -> PredictionSummary:
    """Write ``predictions`` to ``path`` in the format its suffix names, atomically.

    Args:
        path: ``.csv`` or ``.jsonl`` (see :data:`OUTPUT_FORMATS`); its folder is created.
        predictions: e.g. :func:`~splitattn.training.prediction.predict_images`; consumed as written.
        top_k: classes per image (the CSV's columns).

    Raises:
        ValueError: an unknown suffix, before anything is written.
    """
    fmt = output_format(path)
    summary = PredictionSummary()

    def write(tmp: str) -> None:
        nonlocal summary
        with open(tmp, "w", encoding="utf-8", newline="") as stream:
            summary = write_all(fmt.writer(stream, top_k), predictions)

    atomic_write(Path(path), write)
    return summary

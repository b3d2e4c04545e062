"""Broken samples, named: which file or shard member was skipped, and why.

A data set at scale always holds a few samples that cannot be used (an undecodable image, a
sample without a label). They must not crash an epoch, but a count alone does not let the user
find and fix them. So a dataset returns a :class:`SkippedSample` in place of such a sample, the
loader's collate function drops it and hands the records on (:class:`Skips`), and the trainer
gathers them into a :class:`SkipReport`, logs the first few and writes all of them to a file.

A stream that must give every process the same number of steps yields a :class:`SkippedSample`
where it cannot yield a sample, so that a broken sample never changes a process's step count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SKIPPED_FILE = "skipped.txt"  # in the run directory
SHOWN_IN_LOG = 5


@dataclass(frozen=True)
class SkippedSample:
    """A sample that could not be used: where it is (``key``: a file path, ``shard.tar:member``,
    ``dataset[split][index]``) and ``reason`` (the decoder's or reader's message)."""

    key: str
    reason: str

    def line(self) -> str:
        return f"{self.key}\t{self.reason}"


class Skips(int):
    """How many samples of a batch were skipped; ``samples`` names them.

    An ``int``, so that code which only counts skips (``total += skipped``) keeps working, while
    code that wants the names reads ``samples``.
    """

    samples: tuple[SkippedSample, ...]

    def __new__(cls, samples: Iterable[SkippedSample] = ()) -> Skips:
        records = tuple(samples)
        value = super().__new__(cls, len(records))
        value.samples = records
        return value

    def __getnewargs__(self) -> tuple:  # pickled from DataLoader workers with its records
        return (self.samples,)


class SkipReport:
    """Every distinct skipped sample of a run, per split, in the order first met.

    The same broken file is met again every epoch; it is reported once. ``add`` returns the
    records not seen before, which the trainer logs; ``write`` rewrites the run's file with all.
    """

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], SkippedSample] = {}

    def add(self, split: str, samples: Iterable[SkippedSample]) -> list[SkippedSample]:
        new = []
        for sample in samples:
            if (split, sample.key) not in self._records:
                self._records[(split, sample.key)] = sample
                new.append(sample)
        return new

    def __len__(self) -> int:
        return len(self._records)

    def write(self, path: Path) -> None:
        """``split<TAB>key<TAB>reason``, one skipped sample a line."""
        lines = [f"{split}\t{sample.line()}" for (split, _), sample in self._records.items()]
        path.write_text("".join(line + "\n" for line in lines))


def describe_skips(samples: list[SkippedSample], shown: int = SHOWN_IN_LOG) -> str:
    """``a.jpg (cannot identify image file), b.jpg (...) and 3 more`` for a log line."""
    named = ", ".join(f"{s.key} ({s.reason})" for s in samples[:shown])
    return named + (f" and {len(samples) - shown} more" if len(samples) > shown else "")

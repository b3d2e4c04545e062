"""One epoch of a stream shared out over the processes of a torchrun job and their loader workers.

A stream of known parts (tar shards with their sample counts) is laid out as one sequence in an
order drawn from (seed, epoch). Each process (rank) takes a contiguous stretch of it, and each of
its DataLoader workers a contiguous stretch of that, so every sample is read once per epoch and
a reader opens only the few parts its stretch covers. Splitting by samples rather than by whole
parts is what keeps uneven parts from giving ranks different step counts, which would leave
the others waiting forever in DistributedDataParallel's all-reduce: for training, each rank's
stretch is ``ceil(N / world)`` long, the at most ``world - 1`` positions past the end wrapping
round to the first samples (as ``DistributedSampler`` pads), so all ranks take the same steps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import DataError


@dataclass(frozen=True)
class Piece:
    """Samples ``start`` to ``stop`` (exclusive) of part ``part`` of the source."""

    part: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class EpochSplit:
    """Who reads what in one epoch: ``pieces[rank][worker]``, and how many positions repeat
    samples so that the ranks come out even (``padded``)."""

    pieces: tuple[tuple[tuple[Piece, ...], ...], ...]
    total: int
    padded: int

    def count(self, rank: int, worker: int) -> int:
        return sum(len(piece) for piece in self.pieces[rank][worker])

    def steps(self, rank: int, batch_size: int) -> int:
        """Full batches that rank ``rank`` takes: each worker's last partial batch is dropped,
        as the trainer's loader drops a folder's."""
        return sum(self.count(rank, worker) // batch_size for worker in range(len(self.pieces[rank])))


def epoch_order(parts: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The order in which the parts are laid out this epoch: drawn from (seed, epoch) alone, so
    that every rank and worker computes the same one, and a resumed epoch repeats it."""
    order = list(range(parts))
    if shuffle:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def split_epoch(lengths: Sequence[int], order: Sequence[int], world: int, workers: int, pad: bool) -> EpochSplit:
    """Share the samples of parts ``lengths`` (laid out in ``order``) among ``world`` ranks of
    ``workers`` readers each.

    Args:
        lengths: samples in each part (a shard's count from its info file).
        order: the parts in the order of this epoch (:func:`epoch_order`).
        world: processes of the job.
        workers: DataLoader workers per process (1 when it loads in the main process).
        pad: give every rank ``ceil(N / world)`` samples, repeating the first few (training); else
            split without repeats, ranks differing by at most one sample (evaluation).
    """
    total = sum(lengths)
    if total == 0:
        raise DataError("the stream has no samples")
    per_rank = math.ceil(total / world) if pad else None
    ranks = []
    for rank in range(world):
        start, stop = ((rank * per_rank, (rank + 1) * per_rank) if per_rank is not None
                       else (rank * total // world, (rank + 1) * total // world))
        span = stop - start
        ranks.append(tuple(_pieces(lengths, order, start + k * span // workers, start + (k + 1) * span // workers)
                           for k in range(workers)))
    padded = world * per_rank - total if per_rank is not None else 0
    return EpochSplit(tuple(ranks), total, padded)


def _pieces(lengths: Sequence[int], order: Sequence[int], start: int, stop: int) -> tuple[Piece, ...]:
    """Positions ``start``..``stop`` of the laid-out sequence as pieces of parts; positions past
    the end continue from its beginning."""
    total = sum(lengths)
    pieces: list[Piece] = []
    while start < stop:
        position, offset = start % total, 0
        for part in order:
            if position < offset + lengths[part]:
                take = min(stop - start, offset + lengths[part] - position)
                pieces.append(Piece(part, position - offset, position - offset + take))
                start += take
                break
            offset += lengths[part]
    return tuple(pieces)

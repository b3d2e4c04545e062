"""How many graphs dynamo compiled while some code ran: the check that a compiled path holds one graph.

A compiled model should hold one graph per input shape: more means a graph break (part of the
network runs in Python between compiled pieces) or a recompile, and none after a model's first
call at a new shape means dynamo gave up (past its recompile limit it runs the model eagerly,
silently) or that an earlier compile with automatic dynamic shapes made the batch symbolic and
this shape reused that graph. Counted from ``torch._dynamo.utils.counters["stats"]["unique_graphs"]``,
which dynamo increments once per graph it hands to a backend (``torch/_dynamo/output_graph.py``,
torch 2.14): a plain counter, unaffected by logging settings, and cleared by nothing of ours.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class GraphCount:
    """The graphs compiled inside a :func:`counting_graphs` block (``count`` is final when it exits)."""

    count: int = 0


def _unique_graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


@contextlib.contextmanager
def counting_graphs() -> Iterator[GraphCount]:
    """``with counting_graphs() as graphs: model(x)`` leaves in ``graphs.count`` the graphs compiled meanwhile."""
    result = GraphCount()
    start = _unique_graphs()
    try:
        yield result
    finally:
        result.count = _unique_graphs() - start

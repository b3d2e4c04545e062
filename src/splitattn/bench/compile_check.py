"""The benchmark's check that a compiled configuration is what it claims: one static graph, compiled once.

A benchmark process builds many configurations of the same model classes. Without static shapes,
dynamo would compile the second batch size of a model as a graph with a symbolic batch (slower:
inductor then packs conv weights on every call), or past its recompile limit run the model
eagerly under a "compiled" label. Calling this on each compiled candidate's first run proves
neither happened: that call compiles exactly one graph, and the next call compiles none.
"""

from __future__ import annotations

from collections.abc import Callable

from ..deploy.graph_count import counting_graphs
from ..errors import SplitattnError


def check_one_graph(run: Callable[[], object], label: str) -> None:
    """Run ``run`` twice (its warm-up): the first call must compile one graph, the second none.

    Args:
        run: the candidate's unit of work (a forward pass on its fixed batch), not called before.
        label: the configuration's name, for the error.

    Raises:
        SplitattnError: the first call compiled no graph or several, or the second call compiled again.
    """
    with counting_graphs() as first:
        run()
    with counting_graphs() as second:
        run()
    if first.count != 1 or second.count != 0:
        raise SplitattnError(f"{label}: its first call compiled {first.count} graph(s) and its second {second.count}; "
                             "a compiled configuration must compile exactly one (a graph break, a recompile, or "
                             "none at all: dynamo ran it eagerly past its recompile limit, or reused a dynamic graph)")

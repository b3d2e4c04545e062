"""The benchmark's check that a compiled configuration is what it claims: one static graph, compiled once.

A benchmark process builds many configurations of the same model classes. Without static shapes,
dynamo would compile the second batch size of a model as a graph with a symbolic batch (slower:
inductor then packs conv weights on every call), or past its recompile limit run the model
eagerly under a "compiled" label. Checking each compiled candidate proves neither happened: its
build and first call together compile exactly one graph, with no symbolic size in it, and no later
call (warm-up or timed) compiles again.

The build belongs in the count because ``deploy(..., example_input=x, compile="inductor")``
already runs the compiled model once to check its outputs: the graph exists before the
benchmark's first call, which then compiles nothing. Counting "first call only" would call that
case broken and a model with no graph of its own (reusing a dynamic one) fine; counting build and
first call together, and watching for symbols, tells them apart.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from ..deploy.graph_count import counting_graphs
from ..errors import SplitattnError

# Where dynamo's shape environment says it made a size symbolic ("create_symbol s0 = 16 for
# L['x'].size()[0]", torch/fx/experimental/symbolic_shapes.py, torch 2.14): what TORCH_LOGS=dynamic shows.
SYMBOLS_LOGGER = "torch.fx.experimental.symbolic_shapes"


class _Symbols(logging.Handler):
    """Collects the sizes dynamo made symbolic while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.created: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("create_symbol") and isinstance(record.args, tuple) and len(record.args) > 2:
            self.created.append(str(record.args[2]))  # the size's source, L['x'].size()[0]


@contextlib.contextmanager
def watching_symbols() -> Iterator[list[str]]:
    """``with watching_symbols() as symbols: ...`` leaves in ``symbols`` the sizes made symbolic meanwhile."""
    logger, handler = logging.getLogger(SYMBOLS_LOGGER), _Symbols()
    level, propagate, handlers = logger.level, logger.propagate, list(logger.handlers)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # ours to read, not for torch's own log handlers to print
    logger.handlers = [handler]
    try:
        yield handler.created
    finally:
        logger.handlers = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def _fail(label: str, what: str, first: int, second: int, symbols: list[str]) -> SplitattnError:
    return SplitattnError(
        f"{label}: its {what} compiled {first} graph(s) and its second {second}"
        + (f", with symbolic sizes {sorted(set(symbols))}" if symbols else "")
        + "; a compiled configuration must compile exactly one static graph (a graph break, a recompile, "
        "a dynamic batch, or none at all: dynamo ran it eagerly past its recompile limit, or reused a dynamic graph)")


def checked_compiled(build: Callable[[], Callable[[], object]], label: str) -> Callable[[], object]:
    """Build a compiled candidate and prove it holds one static graph; returns its run, guarded.

    ``build`` (deploy, say, which compiles and runs the model once) and the first call of the run
    it returns must compile exactly one graph with no symbolic size, the second call none. The
    returned run checks every later call (the warm-up and the timed ones) compiles nothing either.

    Args:
        build: makes the candidate and returns its unit of work (a forward pass on its fixed batch).
        label: the configuration's name, for the errors.

    Raises:
        SplitattnError: build and first call compiled no graph, several or a symbolic one, or the
            second call compiled again (and, from the returned run, any later call compiling).
    """
    with counting_graphs() as first, watching_symbols() as symbols:
        run = build()
        run()
    with counting_graphs() as second:
        run()
    if first.count != 1 or second.count != 0 or symbols:
        raise _fail(label, "build and first call", first.count, second.count, symbols)
    return no_recompiles(run, label)


def no_recompiles(run: Callable[[], object], label: str) -> Callable[[], object]:
    """``run``, raising if a call of it compiles a graph: a timed call must time the compiled graph,
    not a compile (reading dynamo's counter twice costs microseconds, next to milliseconds of model)."""

    def guarded() -> object:
        with counting_graphs() as graphs:
            out = run()
        if graphs.count:
            raise SplitattnError(f"{label}: a call after its checked first two compiled {graphs.count} graph(s): "
                                 "something changed its input or dynamo's guards between calls")
        return out

    return guarded

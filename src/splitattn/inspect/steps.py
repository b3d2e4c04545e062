"""The steps inside a layer that are not modules: tracing a layer's forward and naming what it does.

A split-attention conv is more than its submodules: between ``conv`` and ``fc1`` the splits are
pooled and summed, after ``fc2`` come the r-softmax and the weighted sum. Module hooks cannot see
those, and adding probe modules to the layers would change the models. Instead each layer is
traced with :mod:`torch.fx` (its direct children kept as leaves), and while the summary runs, the
layer's forward is temporarily replaced by an interpreter of that graph that reports every
tensor-producing function call. The interpreter executes exactly the traced ops, so outputs are
unchanged; a layer whose forward cannot be traced (data-dependent control flow, iterating a
tensor) simply keeps its own forward and shows its child modules only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import fx, nn

# Calls that only rearrange memory. They are shown only when they mean something in the paper's
# terms (the split of a split-attention conv), otherwise they would bury the real steps.
LAYOUT_OPS = frozenset({"view", "reshape", "transpose", "permute", "flatten", "contiguous", "unsqueeze",
                        "squeeze", "expand", "chunk", "split", "unbind"})

# on_step(layer, step_name, op, run): must call run() (which executes the step) and return its result.
StepCallback = Callable[[nn.Module, str, str, Callable[[], Any]], Any]


class _ChildrenAsLeaves(fx.Tracer):
    """Trace one module's own forward; every submodule stays a single call."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return True


def op_name(node: fx.Node) -> str:
    """``"mean"``, ``"softmax"``, ``"add"`` ... for a call node, whether a method or a function."""
    target = node.target
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", str(target)).lstrip("_")


def trace_layer(module: nn.Module) -> fx.GraphModule | None:
    """The module's forward as a graph over its children, or None when it cannot be traced."""
    try:
        graph = _ChildrenAsLeaves().trace(module)
    except Exception:  # fx raises many kinds (TraceError, TypeError, AttributeError ...): fall back.
        return None
    # GraphModule keeps references to the original children, so their hooks and weights are shared.
    return fx.GraphModule(module, graph, class_name=f"Traced{type(module).__name__}")


class _StepInterpreter(fx.Interpreter):
    """Runs a traced layer, handing each tensor produced by a function call to ``on_step``."""

    def __init__(self, graph_module: fx.GraphModule, layer: nn.Module, on_step: StepCallback) -> None:
        super().__init__(graph_module)
        self.layer = layer
        self.on_step = on_step

    def run_node(self, node: fx.Node) -> Any:
        if node.op not in ("call_function", "call_method"):
            return super().run_node(node)
        return self.on_step(self.layer, node.name, op_name(node), lambda: super(_StepInterpreter, self).run_node(node))


def _expandable(module: nn.Module) -> bool:
    """Modules whose forward does more than call children: ours and users' (an attention kind defined
    outside the package too); PyTorch's own modules stay opaque."""
    return not type(module).__module__.startswith("torch.") and not isinstance(module, nn.Sequential)


@contextlib.contextmanager
def record_steps(model: nn.Module, on_step: StepCallback) -> Iterator[list[nn.Module]]:
    """While active, every traceable splitattn layer of ``model`` reports its function calls.

    ``on_step(layer, step_name, op, run)`` must call ``run()`` and return its result; it is the
    place to measure the step (shapes, counted MACs). Yields the layers that could not be traced.
    """
    swapped: list[nn.Module] = []
    untraced: list[nn.Module] = []
    try:
        for module in model.modules():
            if not _expandable(module):
                continue
            graph_module = trace_layer(module)
            if graph_module is None:
                untraced.append(module)
                continue
            interpreter_forward = _make_forward(graph_module, module, on_step)
            module.forward = interpreter_forward  # instance attribute: shadows the class's forward
            swapped.append(module)
        yield untraced
    finally:
        for module in swapped:
            del module.forward


def _make_forward(graph_module: fx.GraphModule, layer: nn.Module, on_step: StepCallback) -> Callable[..., Any]:
    def forward(*args: Any) -> Any:
        return _StepInterpreter(graph_module, layer, on_step).run(*args)

    return forward


def _shape(out: torch.Tensor) -> tuple[int, ...]:
    return tuple(out.shape[1:])


def describe_step(layer: nn.Module, op: str, out: torch.Tensor) -> str:
    """What a function call inside ``layer`` means in the paper's terms; "" for plumbing.

    Each layer names its own steps (``describe_step``, from the call and the shape it produces,
    not from variable names). The layers' own helpers (``spatial_mean``, ``split_weighted_sum``)
    are single calls in the trace (``torch.fx.wrap``), so each is one step here.
    """
    describe = getattr(layer, "describe_step", None)
    return describe(op, _shape(out)) if describe is not None else ""


def describe_child(layer: nn.Module, child_name: str) -> str:
    """Paper terms for the submodules of an attention layer (the convs people look for)."""
    describe = getattr(layer, "describe_child", None)
    return describe(child_name) if describe is not None else ""

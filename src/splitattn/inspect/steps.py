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
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import fx, nn

from ..layers import SelectiveKernelAttn, SelectiveKernelConv, SplitAttnConv2d, SqueezeExcite
from ..models.blocks import BasicBlock, Bottleneck

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
    """Modules of this package whose forward does more than call children (torch.nn stays opaque)."""
    return type(module).__module__.startswith("splitattn.") and not isinstance(module, nn.Sequential)


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

    The rules look at the kind of call and the shape it produces, not at variable names. The
    layers' own helpers (``spatial_mean``, ``split_weighted_sum``) are single calls in the trace
    (``torch.fx.wrap``), so each is one step here, however it is computed inside.
    """
    shape = _shape(out)
    if isinstance(layer, SplitAttnConv2d):
        radix, channels, groups = layer.radix, layer.out_channels, layer.cardinality
        is_map = len(shape) == 4 and shape[2:] != (1, 1)  # not the (radix, C, 1, 1) weights
        if op in ("view", "reshape") and is_map and shape[:2] == (radix, channels) and radix > 1:
            return f"split: {radix} splits of {channels} channels"
        if op == "spatial_mean":
            return "global average pool"
        if op == "sum" and math.prod(shape) == channels and (len(shape) == 1 or shape[1:] == (1, 1)):
            return f"pooled sum of the {radix} splits" if radix > 1 else "pooled descriptor"
        if op == "softmax":
            return f"r-softmax across {radix} splits in each of {groups} cardinal group(s)"
        if op == "sigmoid":
            return "sigmoid gate (radix 1)"
        if op == "mul":
            return "gate channels"  # radix 1; more splits go through split_weighted_sum
        if op == "split_weighted_sum":
            return "weighted sum of the splits"
    elif isinstance(layer, SqueezeExcite):
        return {"spatial_mean": "squeeze: global average pool", "sigmoid": "excitation gate",
                "mul": "scale channels"}.get(op, "")
    elif isinstance(layer, SelectiveKernelConv):
        return {"stack": "stack branches", "split_weighted_sum": "select: weighted sum of branches"}.get(op, "")
    elif isinstance(layer, SelectiveKernelAttn):
        return {"spatial_mean": "global average pool", "sum": "fuse: sum of branches",
                "softmax": "softmax across branches"}.get(op, "")
    elif isinstance(layer, (Bottleneck, BasicBlock)) and op in ("add", "iadd"):
        return "residual add"
    return ""


def describe_child(layer: nn.Module, child_name: str) -> str:
    """Paper terms for the submodules of an attention layer (the convs people look for)."""
    if isinstance(layer, SplitAttnConv2d):
        groups = layer.radix * layer.cardinality
        return {
            "conv": f"grouped conv: {groups} groups (radix {layer.radix} x cardinality {layer.cardinality})",
            "fc1": "reduce (attention bottleneck)",
            "fc2": "expand to radix x channels",
        }.get(child_name, "")
    if isinstance(layer, SqueezeExcite):
        return {"fc1": "excitation: reduce", "fc2": "excitation: expand"}.get(child_name, "")
    if isinstance(layer, SelectiveKernelAttn):
        return {"fc_reduce": "reduce", "fc_select": "one projection per branch"}.get(child_name, "")
    if isinstance(layer, SelectiveKernelConv) and child_name.startswith("paths."):
        return f"branch {child_name.split('.')[1]}: 3x3, dilation {int(child_name.split('.')[1]) + 1}"
    return ""

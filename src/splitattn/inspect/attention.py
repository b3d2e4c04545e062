"""What the attention layers select: their weights for a batch, read with forward hooks.

The models' forward is left alone. Each attention layer already exposes how it computes its
weights (``attention(...)``), so the hooks only need the tensor that goes into it:

- split attention: the activated output of the grouped conv, which is ``act0``'s output;
- squeeze-and-excitation: the layer's own input;
- selective kernel: the output of its ``attn`` submodule, which *is* the branch weights.

Recomputing the small attention head costs a pooled vector and two 1 x 1 convs per layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..layers import SelectiveKernelConv, SplitAttnConv2d, SqueezeExcite


@dataclass
class AttentionRecord:
    """The weights one attention layer gave to each image of a batch.

    ``weights`` is ``(B, choices, groups, C / groups)``: for split attention ``choices`` is the
    radix and ``groups`` the cardinality (with radix > 1 the weights sum to 1 over ``choices`` in
    every cardinal group and channel); for SK the choices are the kernel branches (one group); for
    SE there is one choice, the sigmoid gate of each channel. ``stage`` is 1..4 (``layer3`` -> 3).
    """

    name: str
    kind: str
    stage: int
    weights: torch.Tensor

    @property
    def choices(self) -> int:
        return self.weights.shape[1]

    @property
    def groups(self) -> int:
        return self.weights.shape[2]


def _stage(name: str) -> int:
    head = name.split(".", 1)[0]
    return int(head[5:]) if head.startswith("layer") and head[5:].isdigit() else 0


def attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The split-attention, SE and SK layers of ``model``, in definition order."""
    kinds = (SplitAttnConv2d, SqueezeExcite, SelectiveKernelConv)
    return [(name, module) for name, module in model.named_modules() if isinstance(module, kinds)]


class AttentionRecorder:
    """Context manager that collects an :class:`AttentionRecord` per attention layer call.

    >>> with AttentionRecorder(model) as recorder:
    ...     model(images)
    >>> recorder.records[0].weights.shape
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.records: list[AttentionRecord] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _add(self, name: str, kind: str, weights: torch.Tensor) -> None:
        self.records.append(AttentionRecord(name, kind, _stage(name), weights.detach().float().cpu()))

    def _hook(self, name: str, layer: nn.Module) -> tuple[nn.Module, object]:
        if isinstance(layer, SplitAttnConv2d):
            def splat(_module: nn.Module, _args: object, out: torch.Tensor) -> None:
                # (B, radix, C) radix-major, C grouped by cardinal group: split the groups out.
                attn = layer.attention(out)
                batch = attn.shape[0]
                self._add(name, "splat", attn.view(batch, layer.radix, layer.cardinality, -1))
            return layer.act0, splat
        if isinstance(layer, SqueezeExcite):
            def se(_module: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
                gate = layer.attention(args[0])
                self._add(name, "se", gate.view(gate.shape[0], 1, 1, -1))
            return layer, se

        def sk(_module: nn.Module, _args: object, out: torch.Tensor) -> None:
            self._add(name, "sk", out.view(out.shape[0], out.shape[1], 1, -1))
        return layer.attn, sk

    def __enter__(self) -> AttentionRecorder:
        self.records = []
        for name, layer in attention_layers(self.model):
            module, hook = self._hook(name, layer)
            self._handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def attention_weights(model: nn.Module, images: torch.Tensor) -> list[AttentionRecord]:
    """Run ``images`` through ``model`` (eval mode, no gradients) and return every layer's weights.

    The model's mode is restored afterwards; its outputs are exactly those of a plain forward.
    """
    was_training = model.training
    try:
        with contextlib.ExitStack() as stack:
            recorder = stack.enter_context(AttentionRecorder(model.eval()))
            stack.enter_context(torch.no_grad())
            model(images)
    finally:
        model.train(was_training)
    return recorder.records


def by_stage(records: list[AttentionRecord]) -> Iterator[tuple[int, list[AttentionRecord]]]:
    """Records grouped by stage, shallowest first."""
    for stage in sorted({r.stage for r in records}):
        yield stage, [r for r in records if r.stage == stage]

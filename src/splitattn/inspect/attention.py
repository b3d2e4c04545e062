"""What the attention layers select: their weights for a batch, read with forward hooks.

The models' forward is left alone. Every attention layer (:class:`splitattn.layers.AttentionLayer`)
knows where its weights can be observed and installs the hooks itself (``observe``): split
attention recomputes them from its activated grouped conv, a gate from its input, selective kernels
read the output of their attention head. Recomputing a small attention head costs a pooled vector
and two 1 x 1 convs per layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..layers import AttentionLayer


@dataclass
class AttentionRecord:
    """The weights one attention layer gave to each image of a batch.

    ``weights`` is ``(B, choices, groups, C / groups)``: for split attention ``choices`` is the
    radix and ``groups`` the cardinality (with radix > 1 the weights sum to 1 over ``choices`` in
    every cardinal group and channel); for SK the choices are the kernel branches (one group); for
    a gate (SE) there is one choice, the gate of each channel. ``stage`` is 1..4 (``layer3`` -> 3);
    ``kind``, ``choice_label`` and ``title`` are the layer's own names for itself and its choices.
    """

    name: str
    kind: str
    stage: int
    weights: torch.Tensor
    choice_label: str = "choice"
    title: str = "attention weights"

    @property
    def choices(self) -> int:
        return self.weights.shape[1]

    @property
    def groups(self) -> int:
        return self.weights.shape[2]


def _stage(name: str) -> int:
    head = name.split(".", 1)[0]
    return int(head[5:]) if head.startswith("layer") and head[5:].isdigit() else 0


def attention_layers(model: nn.Module) -> list[tuple[str, AttentionLayer]]:
    """The attention layers of ``model`` (those that can be observed), in definition order."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, AttentionLayer) and type(module).observe is not AttentionLayer.observe]


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

    def _recorder(self, name: str, layer: AttentionLayer):
        def record(weights: torch.Tensor) -> None:
            self.records.append(AttentionRecord(name, layer.kind, _stage(name), weights.detach().float().cpu(),
                                                layer.choice_label, layer.title))
        return record

    def __enter__(self) -> AttentionRecorder:
        self.records = []
        for name, layer in attention_layers(self.model):
            self._handles += layer.observe(self._recorder(name, layer))
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

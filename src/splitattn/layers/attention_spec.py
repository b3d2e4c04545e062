"""Attention kinds as typed specs, and what every attention layer tells the rest of the package.

A block's attention is a frozen dataclass: ``SplitAttention(radix=2)``, ``SqueezeExcitation()``,
``SelectiveKernel()`` or ``NoAttention()`` for a plain ResNet. Each kind has its own fields and
defaults, and builds what it adds to a block: the block's strided 3 x 3 conv (``spatial``) and a
gate after the block's last norm (``gate``). The modules it builds describe themselves
(:class:`AttentionLayer`): how their convs chain into norms and activations (what deploy folds and
fuses), how to observe their attention weights, how to name their steps. So a new kind is one new
file -- a spec and its layer -- and nothing else in the package changes.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ArgumentTypeError

ModuleFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class Chain:
    """``conv -> norm -> between -> act`` inside a module: what deploy folds (norm into conv) and fuses.

    ``between`` are regularisers (DropBlock ...) that are identities in eval mode; ``act`` is None
    when the output goes on elsewhere (into a residual add), so nothing may be fused after the conv.
    The names are attributes of the module that declares the chain; a ``conv`` may also be a
    Sequential ending in a conv (a deep stem).
    """

    conv: str
    norm: str
    act: str | None = None
    between: tuple[str, ...] = ()


def make_act(act_layer: ModuleFactory) -> nn.Module:
    """An activation module, in place where the class allows it (``nn.ReLU(inplace=True)``)."""
    try:
        return act_layer(inplace=True)
    except TypeError:
        return act_layer()


class AttentionLayer(nn.Module):
    """What an attention layer tells deploy, inspect and the plots about itself.

    Subclasses set the class attributes and override the methods that apply to them:

    - ``deploy_chains``: the conv -> norm (-> act) chains inside the layer;
    - ``kind``, ``choice_label``, ``title``: names for records and pictures;
    - :meth:`observe`: hooks that hand each forward's attention weights to ``record`` as
      ``(B, choices, groups, C / groups)``, leaving the forward unchanged;
    - :meth:`step_notes` / :meth:`describe_child`: the paper's words for the steps and
      submodules that the layer summary (``splitattn summary --depth 4``) shows. The notes name
      the calls of the layer's own forward (``"softmax"``, ``"spatial_mean"``), so each layer
      declares them beside its forward, and ``tests/test_layers.py`` traces every kind's forward:
      a call without a note (a rewritten forward) or a note no call uses (a renamed one) fails
      there instead of silently changing the summary. :meth:`describe_step` adds what depends on
      the shape a call produces;
    - ``attention_mlp``: the submodules that turn the pooled descriptor into attention weights.
      They multiply one vector per image, so int8 would save nothing there and only add rounding
      to the weights that scale a whole feature map: ``splitattn.quantize`` keeps them in float
      by default (its sensitivity report measures the choice).
    - ``attention_input``: where the feature map that the attention pools comes from: ``""`` the
      layer's own input (a gate), a submodule's name its output (a conv inside the layer), None
      when a child attention layer reads it. ``splitattn.quantize`` hands this map over in int8,
      and its sensitivity report measures what that rounding costs.
    """

    deploy_chains: ClassVar[tuple[Chain, ...]] = ()
    attention_mlp: ClassVar[tuple[str, ...]] = ()
    attention_input: ClassVar[str | None] = ""
    kind: ClassVar[str] = "attention"
    choice_label: ClassVar[str] = "choice"
    title: ClassVar[str] = "attention weights"

    def observe(self, record: Callable[[torch.Tensor], None]) -> list[torch.utils.hooks.RemovableHandle]:
        return []

    def step_notes(self) -> dict[str, str]:
        """The paper's words for the calls of this layer's forward, by op name (a torch.fx call's
        function or method name: ``"softmax"``, ``"mul"``, ``"spatial_mean"``)."""
        return {}

    def describe_step(self, op: str, shape: tuple[int, ...]) -> str:
        """The note for one call of the forward, given the shape (batch left out) it produced.

        Args:
            op: the call's function or method name, as :meth:`step_notes` keys it.
            shape: the shape of its output without the batch dimension.
        """
        return self.step_notes().get(op, "")

    def describe_child(self, name: str) -> str:
        return ""


class Gate(AttentionLayer):
    """A gate after a block's last norm: ``x = input_act(x); return x * attention(x)``.

    Deploy applies gate, residual add and ReLU in one ``addcmul`` through exactly these two parts,
    so a gate's forward must be what this base class does.
    """

    input_act: nn.Module

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_act(x)
        return x * self.attention(x)

    def observe(self, record: Callable[[torch.Tensor], None]) -> list[torch.utils.hooks.RemovableHandle]:
        """Gates have one choice per channel: ``(B, 1, 1, C)``."""
        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            gate = self.attention(self.input_act(args[0]))
            record(gate.reshape(gate.shape[0], 1, 1, -1))
        return [self.register_forward_hook(hook)]


@dataclass(frozen=True)
class AttentionSpec:
    """The attention of a block. Subclasses are frozen dataclasses whose fields are the kind's settings.

    ``spatial_has_norm``: the spatial conv it builds ends in its own norm and activation (split
    attention, selective kernels), so the block adds none after it. ``bottleneck_only``: it needs a
    Bottleneck block (its conv splits the width into groups a BasicBlock does not have).
    """

    kind: ClassVar[str] = "none"
    spatial_has_norm: ClassVar[bool] = False
    bottleneck_only: ClassVar[bool] = False

    def spatial(self, in_channels: int, out_channels: int, *, stride: int, dilation: int, groups: int,
                norm_layer: ModuleFactory, act_layer: ModuleFactory, drop_block: ModuleFactory) -> nn.Module:
        """The block's strided 3 x 3 conv; by default a plain (grouped, dilated) conv."""
        return nn.Conv2d(in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation, groups=groups,
                         bias=False)

    def gate(self, channels: int, *, act_layer: ModuleFactory) -> nn.Module:
        """What follows the block's last norm: a :class:`Gate`, or ``nn.Identity`` for none.

        Blocks hold it as ``se`` whatever the kind: the name the published SE checkpoints use,
        kept for them (``splitattn.models.blocks``), so a new gate's weights are ``...se.*`` too.
        """
        return nn.Identity()

    def merged(self, overrides: Mapping[str, Any]) -> AttentionSpec:
        """This spec with some fields changed and the others kept; an unknown field is a TypeError."""
        names = [f.name for f in dataclasses.fields(self)]
        for key in overrides:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                listed = ", ".join(names) if names else "none"
                raise ArgumentTypeError(f"{type(self).__name__} has no field {key!r}{hint}; its fields are: {listed}")
        return dataclasses.replace(self, **overrides)


@dataclass(frozen=True)
class NoAttention(AttentionSpec):
    """A plain ResNet block: a 3 x 3 conv, no gate."""


NO_ATTENTION = NoAttention()  # the default of blocks and models (a frozen value, safe to share)


def resolve_attention(value: AttentionSpec | Mapping[str, Any] | None, base: AttentionSpec) -> AttentionSpec:
    """``value`` as a spec: a spec replaces ``base``, a mapping changes some of ``base``'s fields."""
    if value is None:
        return base
    if isinstance(value, AttentionSpec):
        return value
    if isinstance(value, Mapping):
        return base.merged(value)
    raise ArgumentTypeError(f"attn must be an attention spec (SplitAttention(radix=2), SqueezeExcitation(), "
                            "SelectiveKernel(), "
                            f"NoAttention()) or a dict of fields to change, got {type(value).__name__} {value!r}")

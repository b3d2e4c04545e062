"""How much each layer loses in int8, measured on the calibration images, before anything is decided.

For every conv and linear of the deployed float model this runs the layer on its real inputs
(captured from the calibration batches) twice: in float, and with the int8 rounding the quantizer
applies (weights per output channel, symmetric, to [-127, 127]; inputs per tensor, affine, to
[0, 255] when they are non-negative, as after a ReLU, else symmetric). The error is the layer
output's noise-to-signal ratio, in dB (higher is better: 40 dB means the rounding noise is 1% of
the signal). One float pass and one rounding per layer, so it is cheap enough to run on every
model; the end-to-end effect of a choice is then measured by quantizing both ways (``compare``).

The feature maps that reach an attention layer in int8 (``quantize(attention_inputs="int8")``) are
listed too, as kind ``"attention input"``: their SQNR is that of the map's own rounding.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..deploy import deploy
from ..layers import AttentionLayer
from .pt2e import attention_mlp_names


@dataclass(frozen=True)
class LayerSensitivity:
    """One layer's int8 rounding noise: ``sqnr_db`` for weights and inputs rounded together, and for
    each alone, so a report can tell a badly spread weight from a badly spread activation."""

    name: str
    kind: str  # "conv", "attention MLP", "classifier", "attention input"
    sqnr_db: float
    weight_sqnr_db: float
    input_sqnr_db: float
    macs: int  # multiply-accumulates per image: what int8 can save in this layer


def _fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    flat = weight.reshape(weight.shape[0], -1)
    scale = flat.abs().amax(1).clamp_min(1e-12) / 127
    shape = (-1,) + (1,) * (weight.ndim - 1)
    return (weight / scale.view(shape)).round().clamp(-127, 127) * scale.view(shape)


def _fake_quant_input(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    if low >= 0:  # after a ReLU: the full [0, 255] range of uint8 for [0, max]
        scale = max(high, 1e-12) / 255
        return (x / scale).round().clamp(0, 255) * scale
    scale = max(high - low, 1e-12) / 255
    zero = round(-low / scale)
    return ((x / scale).round() + zero).clamp(0, 255).sub(zero) * scale


def _sqnr(reference: torch.Tensor, noisy: torch.Tensor) -> float:
    noise = (reference - noisy).pow(2).mean().item()
    signal = reference.pow(2).mean().item()
    return math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)


def _apply(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, nn.Conv2d):
        return F.conv2d(x, weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)
    # deploy computes the attention MLPs as linears on pooled (N, C, 1, 1) maps (PooledLinear)
    return F.linear(x.flatten(1) if x.ndim > 2 else x, weight, layer.bias)


def _attention_input_hooks(model: nn.Module, record: dict[str, list[torch.Tensor]]) -> list[Any]:
    """Hooks that keep, per attention layer, the feature map its attention pools (``attention_input``)."""
    handles = []
    for name, layer in model.named_modules():
        if not isinstance(layer, AttentionLayer) or layer.attention_input is None:
            continue
        record[name] = []
        if layer.attention_input == "":
            handles.append(layer.register_forward_pre_hook(
                lambda _m, args, name=name: record[name].append(args[0].detach())))
        else:
            handles.append(layer.get_submodule(layer.attention_input).register_forward_hook(
                lambda _m, _args, out, name=name: record[name].append(out.detach())))
    return handles


def sensitivity(model: nn.Module, calibration: Iterable[torch.Tensor], max_images: int = 32) -> list[LayerSensitivity]:
    """Every conv and linear of ``model`` (deployed: BatchNorms folded, as it will be quantized), and
    every feature map an attention reads, worst first.

    Args:
        model: the float model.
        calibration: float32 image batches, preprocessed as for evaluation.
        max_images: every layer's inputs are held at once, so at most this many images are used.
    """
    # the MLPs as convs: how quantize rounds them when they are quantized (keep_float="none")
    deployed = deploy(copy.deepcopy(model).eval(), fuse="none", memory_format="contiguous", attention_mlp="conv")
    mlp = set(attention_mlp_names(deployed))
    layers = {name: m for name, m in deployed.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    inputs: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = [layer.register_forward_pre_hook(lambda _m, args, name=name: inputs[name].append(args[0].detach()))
               for name, layer in layers.items()]
    maps: dict[str, list[torch.Tensor]] = {}
    handles += _attention_input_hooks(deployed, maps)
    with torch.no_grad():
        used = 0
        for batch in calibration:
            if used >= max_images:
                break
            deployed(batch[: max_images - used])
            used += min(batch.shape[0], max_images - used)
    for handle in handles:
        handle.remove()
    results = []
    with torch.no_grad():
        for name, layer in layers.items():
            seen = torch.cat(inputs[name])
            low, high = seen.min().item(), seen.max().item()  # the quantizer's min-max observer
            reference = _apply(layer, seen, layer.weight)
            rounded_weight = _fake_quant_weight(layer.weight)
            rounded_input = _fake_quant_input(seen, low, high)
            kind = "attention MLP" if name in mlp else "classifier" if isinstance(layer, nn.Linear) else "conv"
            per_image = reference[0].numel() * (layer.weight[0].numel())
            results.append(LayerSensitivity(
                name, kind, _sqnr(reference, _apply(layer, rounded_input, rounded_weight)),
                _sqnr(reference, _apply(layer, seen, rounded_weight)),
                _sqnr(reference, _apply(layer, rounded_input, layer.weight)),
                per_image if isinstance(layer, nn.Conv2d) else int(torch.count_nonzero(layer.weight))))
        for name, seen_maps in maps.items():
            seen = torch.cat(seen_maps)
            rounded = _sqnr(seen, _fake_quant_input(seen, seen.min().item(), seen.max().item()))
            results.append(LayerSensitivity(name, "attention input", rounded, math.inf, rounded, 0))
    return sorted(results, key=lambda r: r.sqnr_db)


def format_sensitivity(results: list[LayerSensitivity], limit: int = 10) -> str:
    """The ``limit`` worst layers as a table, plus each kind's median SQNR."""
    lines = [f"{'layer':<32} {'kind':<15} {'SQNR dB':>8} {'weights':>8} {'inputs':>8} {'MMACs':>8}"]
    for r in results[:limit]:
        lines.append(f"{r.name:<32} {r.kind:<15} {r.sqnr_db:8.1f} {r.weight_sqnr_db:8.1f} {r.input_sqnr_db:8.1f} "
                     f"{r.macs / 1e6:8.2f}")
    by_kind: dict[str, list[float]] = {}
    for r in results:
        by_kind.setdefault(r.kind, []).append(r.sqnr_db)
    for kind, values in sorted(by_kind.items()):
        values.sort()
        lines.append(f"median {kind}: {values[len(values) // 2]:.1f} dB over {len(values)} layers")
    return "\n".join(lines)

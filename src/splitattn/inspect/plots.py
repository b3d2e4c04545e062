"""Pictures: the distribution of attention weights per stage, and a heat map over the image.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global
state), at a fixed size so the files are predictable; the heat map is written pixel for pixel at
the size of the network's input crop, so it lines up with what the network saw.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from ..errors import SplitattnError
from .attention import AttentionRecord

ATTENTION_FIGSIZE = (9.0, 4.0)
ATTENTION_DPI = 100
ATTENTION_PX = (int(ATTENTION_FIGSIZE[0] * ATTENTION_DPI), int(ATTENTION_FIGSIZE[1] * ATTENTION_DPI))
MAX_GROUPS = 8


def stage_weights(records: list[AttentionRecord]) -> torch.Tensor:
    """All weights of a stage as ``(choices, groups, N)``: N = images x blocks x channels per group."""
    first = records[0].weights.shape[1:3]
    same = [r.weights for r in records if r.weights.shape[1:3] == first]
    return torch.cat([w.permute(1, 2, 0, 3).flatten(2) for w in same], dim=2)


def plot_stage_attention(records: list[AttentionRecord], path: str | os.PathLike, title: str = "") -> Path:
    """Histogram of each split's (branch's, gate's) weight, one panel per cardinal group.

    Two splits chosen evenly pile up at 0.5; a split that dominates pushes its mass towards 1 and
    the other's towards 0.
    """
    if not records:
        raise SplitattnError("no attention records to plot")
    first = records[0]  # the layer's own words for its kind and its choices
    weights = stage_weights(records).numpy()
    choices, groups = weights.shape[:2]
    shown = min(groups, MAX_GROUPS)
    fig = Figure(figsize=ATTENTION_FIGSIZE, dpi=ATTENTION_DPI)
    axes = fig.subplots(1, shown, sharey=True, squeeze=False)[0]
    bins = np.linspace(0.0, 1.0, 41)
    for group, ax in enumerate(axes):
        for choice in range(choices):
            values = weights[choice, group]
            name = f"{first.choice_label} {choice}" if choices > 1 else "gate"
            label = f"{name} (mean {values.mean():.2f})"
            ax.hist(values, bins=bins, alpha=0.55, label=label, density=True)
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("attention weight")
        ax.set_title(f"cardinal group {group}" if groups > 1 else "all channels", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("density")
    extra = f" (first {shown} of {groups} groups)" if groups > shown else ""
    blocks = len({r.name for r in records})
    gates = choices == 1 and first.choice_label != "gate"  # e.g. split attention with radix 1
    what = f"{first.kind} with one {first.choice_label}: channel gates" if gates else first.title
    fig.suptitle(f"{title}{what}, {blocks} block(s){extra}", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png", dpi=ATTENTION_DPI)
    return out


def save_heatmap(display: np.ndarray, heatmap: torch.Tensor, path: str | os.PathLike, alpha: float = 0.5) -> Path:
    """Blend a [0, 1] heat map (jet colours) over an ``(H, W, 3)`` uint8 image; PNG of size W x H."""
    if display.shape[:2] != tuple(heatmap.shape):
        raise SplitattnError(f"heat map {tuple(heatmap.shape)} and image {display.shape[:2]} differ in size")
    colours = colormaps["jet"](heatmap.clamp(0, 1).numpy())[..., :3]
    blended = (1 - alpha) * display.astype(np.float32) / 255.0 + alpha * colours
    out = Path(path)
    Image.fromarray((blended.clip(0, 1) * 255).round().astype(np.uint8)).save(out, format="PNG")
    return out

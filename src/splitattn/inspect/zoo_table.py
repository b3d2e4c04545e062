"""The zoo as a table: parameters and GMACs at each model's default resolution, next to the papers.

Every model is built on the ``meta`` device and counted with the same flop counter as the
summaries, so the table for all 43 models takes seconds and allocates no weights, even for
ResNeSt-269 at 416 px.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..factory import create_model
from ..models import get_model_entry, list_models

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class ZooRow:
    """One model: sizes counted here, input settings and accuracy from its ``pretrained_cfg``."""

    model: str
    family: str
    params: int
    macs: int
    params_m: float
    gmacs: float
    input_size: str
    crop_pct: float
    interpolation: str
    top1: float | None
    paper: str | None


def count(name: str, input_size: tuple[int, ...] | None = None) -> tuple[int, int]:
    """(parameters, MACs for one image) of a zoo model, at its default input size unless given."""
    with torch.device("meta"):
        model = create_model(name).eval()
    size = tuple(input_size or model.pretrained_cfg["input_size"])
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *size, device="meta"))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def zoo_rows(pattern: str = "*") -> list[ZooRow]:
    """Rows for every zoo model whose name matches the shell-style ``pattern``."""
    names = list_models(pattern)
    if not names:
        raise ValueError(f"no zoo model matches {pattern!r}; splitattn.list_models() lists all "
                         f"{len(list_models())} names (patterns are shell-style, e.g. 'resnest50*')")
    rows = []
    for name in names:
        entry = get_model_entry(name)
        cfg = entry.pretrained_cfg
        params, macs = count(name)
        rows.append(ZooRow(
            model=name,
            family=entry.family,
            params=params,
            macs=macs,
            params_m=round(params / 1e6, 2),
            gmacs=round(macs / 1e9, 2),
            input_size="x".join(str(s) for s in cfg.input_size),
            crop_pct=cfg.crop_pct,
            interpolation=cfg.interpolation,
            top1=cfg.top1,
            paper=cfg.paper,
        ))
    return rows


def format_rows(rows: list[ZooRow], fmt: str = "table") -> str:
    """``table`` (Markdown, readable in a terminal too), ``csv`` or ``json``."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(asdict(rows[0])), lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
        return buffer.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    header = ("model", "family", "params (M)", "GMACs", "input", "crop", "paper top-1 (%)")
    cells = [header] + [
        (r.model, r.family, f"{r.params_m:.2f}", f"{r.gmacs:.2f}", r.input_size, f"{r.crop_pct:g}",
         f"{r.top1:.2f}" if r.top1 is not None else "")
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    numeric = {2, 3, 5, 6}

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in numeric else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(row, widths, strict=True))) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if i in numeric else "-" * w for i, w in enumerate(widths)) + " |"
    return "\n".join([line(header), rule] + [line(c) for c in cells[1:]])

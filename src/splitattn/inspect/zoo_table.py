"""The zoo as a table: sizes at each model's default resolution, its weights and the papers' numbers.

Every model is built on the ``meta`` device and counted with the same flop counter as the
summaries, so the table allocates no weights (about a second per model on two cores), even for
ResNeSt-269 at 416 px. ``weights_rows`` lists each published weight set (``name.tag``) instead:
what it reaches, under which licence and where it can be fetched.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import SplitattnError
from ..factory import create_model
from ..models import get_model_entry, list_models

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class ZooRow:
    """One model: sizes counted here, input settings, its default weights and the paper's top-1."""

    model: str
    family: str
    params: int
    macs: int
    params_m: float
    gmacs: float
    input_size: str
    crop_pct: float
    interpolation: str
    weights: str | None  # the default tag; None when no weights are published
    tags: list[str]
    top1: float | None  # of the default weights
    paper_top1: float | None
    paper: str | None


@dataclass(frozen=True)
class WeightsRow:
    """One published weight set and where it lives."""

    name: str
    top1: float
    top1_by: str
    input_size: str
    crop_pct: float
    interpolation: str
    license: str
    trained_by: str
    sources: list[str]


def count(name: str, input_size: tuple[int, ...] | None = None) -> tuple[int, int]:
    """(parameters, MACs for one image) of a zoo model, at its default input size unless given."""
    with torch.device("meta"):
        model = create_model(name).eval()
    size = tuple(input_size or model.pretrained_cfg["input_size"])
    params = sum(p.numel() for p in model.parameters())
    _drop_batch_norms(model)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *size, device="meta"))
    return params, counter.get_total_flops() // 2


def _drop_batch_norms(module: nn.Module) -> None:
    """Replace each batch norm by an identity: it has no MACs, but on the meta device its eval-mode
    forward runs a Python decomposition that was half the time of the whole zoo table. (Folding them
    with ``deploy.fold_batchnorms`` gives the same counts, 45% slower: it computes new conv weights.)"""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _drop_batch_norms(child)


def _matching(pattern: str) -> list[str]:
    names = list_models(pattern)
    if not names:
        raise SplitattnError(f"no zoo model matches {pattern!r}; splitattn.list_models() lists all "
                             f"{len(list_models())} names (patterns are shell-style, e.g. 'resnest50*')")
    return names


def _size(size: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in size)


def zoo_rows(pattern: str = "*") -> list[ZooRow]:
    """Rows for every zoo model whose name matches the shell-style ``pattern``."""
    rows = []
    for name in _matching(pattern):
        entry = get_model_entry(name)
        cfg, weights = entry.pretrained_cfg, entry.weights_for(None)
        params, macs = count(name)
        rows.append(ZooRow(
            model=name, family=entry.family, params=params, macs=macs, params_m=round(params / 1e6, 2),
            gmacs=round(macs / 1e9, 2), input_size=_size(cfg.input_size), crop_pct=cfg.crop_pct,
            interpolation=cfg.interpolation, weights=weights.tag if weights else None, tags=list(entry.tags),
            top1=weights.top1 if weights else None, paper_top1=cfg.paper_top1, paper=cfg.paper,
        ))
    return rows


def weights_rows(pattern: str = "*") -> list[WeightsRow]:
    """One row per published weight set of the models matching ``pattern`` (models without any are left out)."""
    rows = []
    for name in _matching(pattern):
        entry = get_model_entry(name)
        for weights in entry.weights:
            cfg = entry.cfg_for(weights.tag)
            rows.append(WeightsRow(
                name=f"{name}.{weights.tag}", top1=weights.top1, top1_by=weights.top1_by,
                input_size=_size(cfg.input_size), crop_pct=cfg.crop_pct, interpolation=cfg.interpolation,
                license=weights.license, trained_by=weights.trained_by, sources=[s.url for s in weights.sources],
            ))
    return rows


def _optional(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else ""


def _table(rows: list[Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]], set[int]]:
    """Header, cells and right-aligned columns of the Markdown table for ``rows``."""
    if isinstance(rows[0], WeightsRow):
        header = ("weights", "top-1 (%)", "input", "crop", "licence", "sources")
        cells = [(r.name, f"{r.top1:.2f}", r.input_size, f"{r.crop_pct:g}", r.license,
                  ", ".join(dict.fromkeys(_host(s) for s in r.sources))) for r in rows]
        return header, cells, {1, 3}
    header = ("model", "family", "params (M)", "GMACs", "input", "crop", "weights", "top-1 (%)", "paper top-1 (%)")
    cells = [(r.model, r.family, f"{r.params_m:.2f}", f"{r.gmacs:.2f}", r.input_size, f"{r.crop_pct:g}",
              (r.weights or "-") + (f" +{len(r.tags) - 1}" if len(r.tags) > 1 else ""), _optional(r.top1),
              _optional(r.paper_top1)) for r in rows]
    return header, cells, {2, 3, 5, 7, 8}


def _host(url: str) -> str:
    """``hf-hub:org/repo``, ``github.com/owner/repo`` (several projects publish there), else the host."""
    if url.startswith("hf-hub:"):
        return url
    parts = url.split("/")
    return "/".join(parts[2:5]) if parts[2] == "github.com" else parts[2]


def format_rows(rows: list[ZooRow] | list[WeightsRow], fmt: str = "table") -> str:
    """``table`` (Markdown, readable in a terminal too), ``csv`` or ``json``."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(asdict(rows[0])), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: " ".join(v) if isinstance(v, list) else v for k, v in asdict(r).items()} for r in rows)
        return buffer.getvalue().rstrip("\n")
    if fmt != "table":
        raise SplitattnError(f"format must be one of {FORMATS}, got {fmt!r}")
    header, cells, numeric = _table(rows)
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in numeric else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(row, widths, strict=True))) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if i in numeric else "-" * w for i, w in enumerate(widths)) + " |"
    return "\n".join([line(header), rule] + [line(c) for c in cells])

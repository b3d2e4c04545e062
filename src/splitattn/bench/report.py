"""Benchmark rows as a Markdown table (for terminals and the README) or JSON (for machines)."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

from .cpu_info import cpu_description
from .runner import BenchRow

COLUMNS = (
    ("model", "model", "{}"),
    ("mode", "mode", "{}"),
    ("batch_size", "batch", "{}"),
    ("img_size", "px", "{}"),
    ("candidate", "candidate", "{}"),
    ("images_per_s", "img/s", "{:.1f}"),
    ("median_ms", "median ms", "{:.1f}"),
    ("p90_ms", "p90 ms", "{:.1f}"),
    ("speedup_vs_timm", "x timm", "{:.2f}"),
    ("speedup_vs_best_timm", "x best timm", "{:.2f}"),
    ("peak_mem_mb", "peak MiB", "{:.0f}"),
    ("mem_vs_timm", "mem x timm", "{:.2f}"),
    ("gflops_per_image", "GFLOP/img", "{:.2f}"),
    ("roof_fraction", "roof", "{:.0%}"),
)


def environment(roof_flops: float | None = None, probe_flops: dict[str, float] | None = None) -> dict:
    """What the numbers were measured on, recorded next to them."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu": cpu_description(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "roof_gflops": roof_flops / 1e9 if roof_flops else None,
        "roof_probes_gflops": {name: rate / 1e9 for name, rate in (probe_flops or {}).items()},
    }


def roof_text(env: dict) -> str:
    """``"412 GFLOP/s (matmul 205, conv3x3 412)"``: the roof and the probes it was taken from."""
    probes = ", ".join(f"{name} {rate:.0f}" for name, rate in env["roof_probes_gflops"].items())
    return f"{env['roof_gflops']:.0f} GFLOP/s ({probes})"


def markdown_table(rows: Sequence[BenchRow]) -> str:
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|" + "|".join(" --- " for _ in COLUMNS) + "|"]
    for row in rows:
        data = row.as_dict()
        cells = ["-" if data[key] is None else fmt.format(data[key]) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(rows: Sequence[BenchRow], path: str | Path, env: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"environment": env, "rows": [r.as_dict() for r in rows]}, indent=2) + "\n")
    return path

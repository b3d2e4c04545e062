"""Benchmarks: throughput, latency, peak memory and roof fraction, against timm and the official package.

Candidates are timed in turns within one process (A B A B ...), so a noisy shared machine slows
them alike and the reported ratios stay trustworthy even when absolute times do not.
"""

from __future__ import annotations

from .candidates import DTYPES, OURS, TRAINING_VARIANTS, BenchConfig, inference_variants
from .memory import LiveTensorBytes, peak_memory
from .report import environment, markdown_table, roof_text, write_json
from .roof import count_flops, roof_probes, roof_rate
from .runner import MODES, BenchRow, run_config
from .timing import TimingSummary, interleaved_times

__all__ = [
    "DTYPES",
    "MODES",
    "OURS",
    "TRAINING_VARIANTS",
    "BenchConfig",
    "BenchRow",
    "LiveTensorBytes",
    "TimingSummary",
    "count_flops",
    "environment",
    "inference_variants",
    "interleaved_times",
    "markdown_table",
    "peak_memory",
    "roof_probes",
    "roof_rate",
    "roof_text",
    "run_config",
    "write_json",
]

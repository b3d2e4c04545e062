"""Run one benchmark configuration: time every candidate in turns, then measure memory and FLOPs."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import SplitattnError
from ..factory import create_model
from .candidates import (
    TRAINING_VARIANTS,
    BenchConfig,
    Candidate,
    inference_candidates,
    inference_variants,
    training_candidates,
)
from .memory import peak_memory
from .roof import count_flops, roof_probes
from .timing import TimingSummary, interleaved_times

MODES = ("inference", "training")
BASELINE = "timm"
ROOF_PREFIX = "roof probe: "


@dataclass
class BenchRow:
    """One candidate's numbers for one configuration.

    Ratios are against the ``timm`` row (timm as configured), and against the faster of timm's
    two memory layouts (``speedup_vs_best_timm``).
    """

    model: str
    mode: str
    candidate: str
    batch_size: int
    img_size: int
    dtype: str
    channels_last: bool
    device: str
    median_ms: float
    p90_ms: float
    images_per_s: float
    speedup_vs_timm: float | None
    speedup_vs_best_timm: float | None
    peak_mem_mb: float | None
    mem_vs_timm: float | None
    gflops_per_image: float
    roof_fraction: float | None  # against the roof of its own precision
    roof_gflops: float | None = None
    precision: str = "float32"  # what the candidate computes in: float32, bfloat16 or int8
    setup: dict | None = None  # how the candidate was built and configured (engine, shapes, hints, checks)
    # each timed round's ms, in the order run: the rounds are interleaved, so two rows' i-th times
    # were taken seconds apart, under the same load (the summary compares them pairwise)
    round_ms: list[float] | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _candidates(config: BenchConfig, mode: str, variants: tuple[str, ...] | None, references: bool,
                workdir: Path) -> list[Candidate]:
    if mode not in MODES:
        raise SplitattnError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "inference":
        return inference_candidates(config, variants or ("eager", "deploy"), references, workdir)
    return training_candidates(config, variants or ("train",), references)


def _peak_mb(candidate: Candidate, device: torch.device) -> float | None:
    """Peak MiB of one call, or None where it cannot be observed (onnxruntime, TorchScript on CPU)."""
    if not candidate.observable_memory:
        return None
    try:
        return peak_memory(candidate.fn, device)[0] / 2**20
    except RuntimeError:
        return None


def run_config(
    config: BenchConfig,
    mode: str = "inference",
    variants: tuple[str, ...] | None = None,
    warmup: int = 1,
    repeats: int = 5,
    references: bool = True,
    memory: bool = True,
    roof_flops: float | None = None,
) -> list[BenchRow]:
    """Benchmark ``config`` in ``mode``; one row per candidate.

    ``roof_flops`` (from ``roof.roof_rate``) turns achieved FLOP rates into roof fractions.
    """
    # The engines' exported files live as long as the configuration: half a GB for a ResNeSt-50's six
    # files, which a whole run would otherwise pile up until it ends.
    with tempfile.TemporaryDirectory(prefix="splitattn-bench-") as workdir:
        return _run(config, mode, variants, warmup, repeats, references, memory, roof_flops, Path(workdir))


def _run(config: BenchConfig, mode: str, variants: tuple[str, ...] | None, warmup: int, repeats: int,
         references: bool, memory: bool, roof_flops: float | None, workdir: Path) -> list[BenchRow]:
    device = torch.device(config.device)
    candidates = _candidates(config, mode, variants, references, workdir)
    fns = {c.label: c.fn for c in candidates}
    # Each precision among the candidates gets its roof; the config's own dtype is the base one.
    # The probes run in the same rounds as the models, so they see the same machine load; the
    # best of the up-front (``roof_flops``, the base precision) and interleaved measurements wins.
    own = config.dtype  # "float32" candidates compute in the config's dtype (eager bf16 runs, say)
    precision_of = {c.label: c.precision if c.precision != "float32" else own for c in candidates}
    probes = {precision: roof_probes(device, config.torch_dtype if precision == own else torch.float32,
                                     None if precision == own else precision)
              for precision in sorted(set(precision_of.values()))} if roof_flops else {}
    for group in probes.values():
        fns |= {ROOF_PREFIX + name: fn for name, (fn, _) in group.items()}
    times = interleaved_times(fns, device, warmup, repeats)
    roofs = {precision: roof_flops if precision == own else 0.0 for precision in probes}
    for precision, group in probes.items():
        for name, (_, work) in group.items():
            roofs[precision] = max(roofs[precision], work / min(times.pop(ROOF_PREFIX + name)))
    peaks = {c.label: _peak_mb(c, device) for c in candidates} if memory else {}
    flop_model = create_model(config.model).to(device, config.torch_dtype).train(mode == "training")
    flops = count_flops(flop_model, config.example(), backward=mode == "training")
    summaries = {label: TimingSummary.of(seconds, config.batch_size) for label, seconds in times.items()}
    base = summaries.get(BASELINE)
    # timm in its layouts ("timm", "timm channels_last"), not timm's model run by an engine ("timm->onnx")
    best_timm = max((s.images_per_s for label, s in summaries.items()
                     if label == BASELINE or label.startswith(BASELINE + " ")), default=None)
    setups = {c.label: c.setup or None for c in candidates}
    rows = []
    for label, summary in summaries.items():
        peak = peaks.get(label)
        rate = flops / (summary.median_ms / 1e3)
        roof = roofs.get(precision_of[label])
        rows.append(BenchRow(
            model=config.model, mode=mode, candidate=label, batch_size=config.batch_size,
            img_size=config.img_size, dtype=config.dtype, channels_last=config.channels_last,
            device=config.device, median_ms=summary.median_ms, p90_ms=summary.p90_ms,
            images_per_s=summary.images_per_s,
            speedup_vs_timm=summary.images_per_s / base.images_per_s if base else None,
            speedup_vs_best_timm=summary.images_per_s / best_timm if best_timm else None,
            peak_mem_mb=peak,
            mem_vs_timm=peak / peaks[BASELINE] if peak is not None and peaks.get(BASELINE) else None,
            gflops_per_image=flops / config.batch_size / 1e9,
            roof_fraction=rate / roof if roof else None,
            roof_gflops=roof / 1e9 if roof else None,
            precision=precision_of[label], setup=setups.get(label),
            round_ms=[seconds * 1e3 for seconds in times[label]],
        ))
    return rows


__all__ = ["MODES", "TRAINING_VARIANTS", "BenchRow", "inference_variants", "run_config"]

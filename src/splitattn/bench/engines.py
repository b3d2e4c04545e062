"""The engines people deploy with (onnxruntime, OpenVINO, ...) running our network, as candidates.

Every export format is a candidate in each of its ``bench_precisions``, read from the export
table (:data:`splitattn.export.FORMATS`) when asked: the file's suffix, the options it is
exported with, the runner and the precision the engine computes in all come from the format's
record, so a format added to the table is benchmarked without an edit here. How each engine
is compiled for the benchmark's fixed batch (static shape, performance hints, threads) comes from
:data:`.engine_setup.ENGINE_SETUPS`, and is recorded with the candidate.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..export import FORMATS, PRECISIONS, ExportFormat, export_checked
from .config import BenchConfig, Candidate, calibration, float32_cpu_only
from .engine_setup import ENGINE_SETUPS, EXTRA_BENCH_PRECISIONS


def variant_name(export_format: ExportFormat, precision: str) -> str:
    """``onnx`` for a format's fp32 file, ``onnx+int8`` for another precision."""
    return export_format.name if precision == "fp32" else f"{export_format.name}+{precision}"


# The noise control: OpenVINO fp32 set up a second time, exactly as the first. Two identical setups
# in one interleaved run differ only by the machine's noise (measured up to 35% in single runs on
# a shared two-core VM), so the summary reads how far apart they are as the run's resolution.
NOISE_CONTROL = "openvino again"


def engine_variants() -> dict[str, tuple[ExportFormat, str]]:
    """Each engine variant's name with its format and the precision its file is written in, and the
    noise control (:data:`NOISE_CONTROL`)."""
    variants = {variant_name(f, p): (f, p) for f in FORMATS.values()
                for p in (*f.bench_precisions, *EXTRA_BENCH_PRECISIONS.get(f.name, ()))}
    return {**variants, NOISE_CONTROL: variants["openvino"]}


def engine_candidate(variant: str, export_format: ExportFormat, precision: str, model: nn.Module,
                     config: BenchConfig, x: torch.Tensor, workdir: Path) -> Candidate:
    """``model`` exported as ``export_format`` in ``precision`` (float32 CPU input) and run by its engine.

    Engines with a benchmark setup (:data:`.engine_setup.ENGINE_SETUPS`) are compiled for the
    static batch with their documented performance settings, at the precision the variant names
    (OpenVINO fp32 in f32 even where the CPU has bf16; ``openvino+bf16`` for that); the others run
    at what their format's runner picks (``ExportFormat.engine_precision``). Either way the row
    says what it ran at. int8 files are calibrated as ours is.

    Args:
        variant: the candidate's label (see :func:`engine_variants`).
        export_format: the format's record.
        precision: the precision its file is written in.
        model: our float32 model (eval mode).
        config: the benchmark's configuration (float32 on CPU).
        x: the batch it runs on.
        workdir: where the file is written.
    """
    float32_cpu_only(config, variant)
    path = workdir / f"{config.model}-b{config.batch_size}-{precision}{export_format.suffix}"
    images = calibration(config) if PRECISIONS[precision].needs_calibration else None
    path, _ = export_checked(model.float().cpu(), path, export_format.name, tuple(x.shape[1:]), check=False,
                             precision=precision, calibration=images, **export_format.bench_options)
    compile_engine = ENGINE_SETUPS.get(export_format.name)
    if compile_engine is not None:
        run, ran_at, setup = compile_engine(path, precision, tuple(x.shape), torch.get_num_threads())
    else:
        run, ran_at = export_format.runner(path, export_format.engine_precision(precision))
        setup = {"engine": f"{export_format.label} through its export format's runner"}
    setup = {"model": f"ours exported as {export_format.label} ({precision} file)", **setup}
    contiguous = x.contiguous()
    computes_in = PRECISIONS[ran_at].dtype_name if ran_at in PRECISIONS else ran_at
    return Candidate(variant, lambda: run(contiguous), None, observable_memory=False, precision=computes_in,
                     setup=setup)

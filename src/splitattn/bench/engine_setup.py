"""Each engine in the benchmark with its best documented setup for one fixed batch, and that setup recorded.

A comparison with an engine is only as fair as the engine's configuration: run at its defaults with
a dynamic batch, OpenVINO and onnxruntime plan every call for an unknown shape, and the speed
verdict says more about the harness than about the engines. The benchmark times one synchronous
call on one fixed batch, so each engine gets what its documentation prescribes for that:

- **OpenVINO** (CPU plugin): the model reshaped to the static batch ``[B, C, H, W]`` before it is
  compiled (our IR is written with a dynamic batch); ``PERFORMANCE_HINT`` ``LATENCY``: one stream
  with every thread on the one request in flight. ``THROUGHPUT`` splits the cores into streams that
  each run *another* request, which pays only with several requests in flight (asynchronous
  inference); one synchronous request would get one stream's share of the threads.
  ``INFERENCE_NUM_THREADS`` is the benchmark's thread count, ``INFERENCE_PRECISION_HINT`` the
  precision the candidate claims (``f32`` for fp32 and for int8's float ops, ``bf16`` for bf16).
- **onnxruntime** (CPU execution provider): ``graph_optimization_level`` ``ORT_ENABLE_ALL``, the
  batch dimension fixed by ``add_free_dimension_override_by_name`` (the static-shape route of its
  documentation for a file with a symbolic batch), ``intra_op_num_threads`` the thread count, and
  no spinning after a call (its pool's busy-waiting would take the cores from the next candidate
  in the interleaved rounds, slowing everyone but itself).

Every candidate's setup is returned as a plain dict, written beside its row in the results and
printed in the summary's notes, so a reader sees which configuration each verdict is about.
Engines without an entry here run through their export format's own runner.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..deploy.onnx_runtime import BATCH_DIM, onnx_session, run_onnx
from ..export.format import Run
from ..export.openvino import PRECISION_HINTS, compile_cpu, compiled_precision, precision_ran, run_openvino

Setup = dict[str, object]
# (path, precision of its file or the engine precision asked for, static input shape, threads) ->
# (run, the precision it really runs at, its setup)
EngineCompile = Callable[[Path, str, tuple[int, ...], int], tuple[Run, str, Setup]]


def openvino_setup(compiled, **described: object) -> Setup:
    """The recorded setup of a compiled OpenVINO model: the engine, what the caller says, and the
    precision its float ops really ran at."""
    import openvino as ov

    return {"engine": f"OpenVINO {ov.__version__.split('-')[0]} CPU", **described,
            "float ops ran at": compiled_precision(compiled)}


def _openvino(path: Path, precision: str, shape: tuple[int, ...], threads: int) -> tuple[Run, str, Setup]:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    model.reshape(list(shape))
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
              "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]}
    compiled = compile_cpu(model, config)
    setup = openvino_setup(compiled, input=f"static {list(shape)} (reshaped)",
                           **{key: str(value) for key, value in config.items()})
    return (lambda x: run_openvino(compiled, x)), precision_ran(precision, compiled), setup


def onnx_setup(threads: int, shape: str) -> Setup:
    """The recorded setup of a session made with ``deploy.onnx_runtime.session_options``."""
    import onnxruntime as ort

    return {"engine": f"onnxruntime {ort.__version__} CPUExecutionProvider", "input": shape,
            "graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_num_threads": threads,
            "allow_spinning": "0 (interleaved rounds)"}


def _onnxruntime(path: Path, precision: str, shape: tuple[int, ...], threads: int) -> tuple[Run, str, Setup]:
    session = onnx_session(path, threads, batch=shape[0])
    fixed = session.get_inputs()[0].shape  # what the session now takes: the override's effect, not our intent
    setup = onnx_setup(threads, f"static {fixed} (free dimension {BATCH_DIM!r} fixed)")
    return (lambda x: run_onnx(session, x)), precision, setup


# Export format name -> how the benchmark compiles its file for one fixed batch.
ENGINE_SETUPS: dict[str, EngineCompile] = {"openvino": _openvino, "onnx": _onnxruntime}
# Precisions the benchmark times a format in beyond the export table's bench_precisions: OpenVINO
# computes an fp32 file in bf16 when asked, and the bf16 target is against that.
EXTRA_BENCH_PRECISIONS: dict[str, tuple[str, ...]] = {"openvino": ("bf16",)}

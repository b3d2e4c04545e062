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

import torch

from ..export.format import Run
from ..export.signal_stack import preserved_signal_stack

Setup = dict[str, object]
# (path, precision of its file or the engine precision asked for, static input shape, threads) ->
# (run, the precision it really runs at, its setup)
EngineCompile = Callable[[Path, str, tuple[int, ...], int], tuple[Run, str, Setup]]

OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # as export/openvino.py's checks use them
ORT_BATCH_DIM = "batch"  # the symbolic batch's name in our ONNX files (both exporters)


def openvino_compiled(model, config: dict[str, object]):
    """``ov.Core().compile_model(model, "CPU", config)`` keeping the signal stack it would leave dangling
    (see :mod:`splitattn.export.signal_stack`: without it a later signal segfaults the process).

    Args:
        model: an ``ov.Model`` or the path of an IR.
        config: the CPU plugin's properties.
    """
    import openvino as ov

    with preserved_signal_stack():
        return ov.Core().compile_model(model, "CPU", config)


def openvino_float_precision(compiled) -> str:
    """What the compiled model's float ops run at, in OpenVINO's words (``f32``, ``bf16``)."""
    return str(compiled.get_property("INFERENCE_PRECISION_HINT").to_string())


def openvino_run(compiled) -> Run:
    """The compiled model as a function of a float tensor (one synchronous request)."""
    import numpy as np

    def run(x: torch.Tensor) -> torch.Tensor:
        result = compiled(np.ascontiguousarray(x.detach().cpu().float().numpy()))
        return torch.from_numpy(np.array(result[0], copy=True))

    return run


def _openvino(path: Path, precision: str, shape: tuple[int, ...], threads: int) -> tuple[Run, str, Setup]:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    model.reshape(list(shape))
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
              "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision]}
    compiled = openvino_compiled(model, config)
    float_ops = openvino_float_precision(compiled)
    ran_at = precision if float_ops == OPENVINO_HINTS[precision] else {"f32": "fp32"}.get(float_ops, float_ops)
    setup = {"engine": f"OpenVINO {ov.__version__.split('-')[0]} CPU", "input": f"static {list(shape)} (reshaped)",
             **{key: str(value) for key, value in config.items()}, "float ops ran at": float_ops}
    return openvino_run(compiled), ran_at, setup


def onnx_run(session) -> Run:
    """An onnxruntime session as a function of a float tensor."""
    import numpy as np

    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {name: np.ascontiguousarray(x.detach().cpu().numpy())})[0])

    return run


def onnx_options(threads: int, batch: int | None = None):
    """Session options: all graph optimizations, ``threads`` intra-op threads, no spinning, and the
    symbolic batch fixed to ``batch`` where given."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if batch is not None:
        options.add_free_dimension_override_by_name(ORT_BATCH_DIM, batch)
    return options


def onnx_setup(threads: int, shape: str) -> Setup:
    """The recorded setup of a session made with :func:`onnx_options`."""
    import onnxruntime as ort

    return {"engine": f"onnxruntime {ort.__version__} CPUExecutionProvider", "input": shape,
            "graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_num_threads": threads,
            "allow_spinning": "0 (interleaved rounds)"}


def _onnxruntime(path: Path, precision: str, shape: tuple[int, ...], threads: int) -> tuple[Run, str, Setup]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), onnx_options(threads, shape[0]), providers=["CPUExecutionProvider"])
    fixed = session.get_inputs()[0].shape  # what the session now takes: the override's effect, not our intent
    setup = onnx_setup(threads, f"static {fixed} (free dimension {ORT_BATCH_DIM!r} fixed)")
    return onnx_run(session), precision, setup


# Export format name -> how the benchmark compiles its file for one fixed batch.
ENGINE_SETUPS: dict[str, EngineCompile] = {"openvino": _openvino, "onnx": _onnxruntime}
# Precisions the benchmark times a format in beyond the export table's bench_precisions: OpenVINO
# computes an fp32 file in bf16 when asked, and the bf16 target is against that.
EXTRA_BENCH_PRECISIONS: dict[str, tuple[str, ...]] = {"openvino": ("bf16",)}

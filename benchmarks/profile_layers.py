"""Where each engine spends a forward pass, by kind of layer: ``python benchmarks/profile_layers.py``.

The speed tables say who is faster; this says where. One model (default resnest50 at 224 px) at
batch 1 and 16, float32 and int8 (and bf16 with ``--precisions bf16``), is run by ours (deploy;
deploy + inductor; int8 through PT2E and inductor; bf16 eager and compiled), by onnxruntime (not
in bf16, which it does not run on CPU) and by OpenVINO (our exported files, static shapes, its
inference precision hint set to the precision profiled), each with its own
profiler: PyTorch's (``torch.profiler``, inductor kernels named by ``cpp.enable_kernel_profile``),
OpenVINO's per-node performance counters (``PERF_COUNT``) and onnxruntime's per-node trace
(``enable_profiling``). Each engine's own layer names are put into a few kinds (convolution,
matrix product, pooling and reductions, softmax, element-wise, quantize and reorder, other), so
the same network's time can be compared kind by kind. Profilers add overhead of their own: read
the shares and the per-kind milliseconds against each other, and take speed from the benchmark.

Writes ``OUT.json`` and ``OUT.md`` (default ``benchmarks/layers``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

import splitattn
from splitattn.bench import environment
from splitattn.bench.cpu_info import cpu_description, cpu_line
from splitattn.deploy import deploy
from splitattn.deploy.onnx_runtime import session_options
from splitattn.deploy.openvino_model import FLOAT_OPS_AT
from splitattn.export import export_checked
from splitattn.export.openvino import compile_cpu

KINDS = ("convolution", "matrix product", "pooling/reduction", "softmax", "element-wise", "quantize/reorder",
         "other")
# Substrings of each engine's layer names, in the order they are tried (the first match decides).
_KIND_WORDS = (
    ("quantize/reorder", ("quantize", "reorder", "convert", "to_dense", "copy", "contiguous", "transpose", "permute",
                          "fakequant")),
    ("convolution", ("conv",)),
    ("matrix product", ("linear", "addmm", "matmul", "gemm", "fullyconnected", "mm")),
    ("softmax", ("softmax",)),
    ("pooling/reduction", ("pool", "mean", "reduce", "sum")),
    ("element-wise", ("add", "mul", "relu", "sigmoid", "eltwise", "cpp_fused", "subgraph", "div", "clamp",
                      "split", "concat", "slice", "view", "reshape", "flatten")),
)


def kind_of(layer_type: str) -> str:
    """The kind a layer (an engine's op name) is counted under."""
    name = layer_type.lower()
    for kind, words in _KIND_WORDS:
        if any(word in name for word in words):
            return kind
    return "other"


def _by_kind(times_ms: dict[str, float]) -> dict[str, float]:
    out = dict.fromkeys(KINDS, 0.0)
    for layer_type, ms in times_ms.items():
        out[kind_of(layer_type)] += ms
    return out


def profile_torch(run: Callable[[], object], repeats: int) -> dict[str, float]:
    """Self CPU time per op of ``run`` (ms per call), from PyTorch's profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            run()
    ops: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith("ProfilerStep") or event.self_cpu_time_total <= 0:
            continue
        ops[event.key] += event.self_cpu_time_total / 1e3 / repeats
    return dict(ops)


def profile_openvino(xml: Path, x: torch.Tensor, precision: str, repeats: int) -> dict[str, float]:
    """Per node type (and the kernel it ran), ms per call, from OpenVINO's performance counters."""
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    model.reshape(list(x.shape))  # static: the shape this profile runs at
    config = {"PERF_COUNT": "YES", "INFERENCE_NUM_THREADS": torch.get_num_threads(),
              "INFERENCE_PRECISION_HINT": FLOAT_OPS_AT[precision], "PERFORMANCE_HINT": "LATENCY"}
    compiled = compile_cpu(model, config)
    request = compiled.create_infer_request()
    feed = x.numpy()
    request.infer({0: feed})
    ops: dict[str, float] = defaultdict(float)
    for _ in range(repeats):
        request.infer({0: feed})
        for node in request.get_profiling_info():
            if node.status == node.status.EXECUTED:
                ops[f"{node.node_type} [{node.exec_type}]"] += node.real_time.total_seconds() * 1e3 / repeats
    del request, compiled
    return dict(ops)


def profile_onnxruntime(path: Path, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Per op type (and its kernel's provider), ms per call, from onnxruntime's node trace."""
    import onnxruntime as ort

    options = session_options(batch=x.shape[0])  # as the benchmark sets it up, plus the trace
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    session.run(None, feed)
    for _ in range(repeats):
        session.run(None, feed)
    trace = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"]
    ops: dict[str, float] = defaultdict(float)
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            ops[event["args"]["op_name"]] += event["dur"] / 1e3
    return {k: v / max(len(runs), 1) for k, v in ops.items()}


def _wall_ms(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run`` in ms, without a profiler (the profiles' overhead aside)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def _forward(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run


def _engine_runs(model: torch.nn.Module, x: torch.Tensor, calibration: list[torch.Tensor], precision: str,
                 workdir: Path) -> dict[str, Callable[[int], dict[str, float]]]:
    """The export engines of ``precision`` as profiling functions (repeats -> ms per op)."""
    shape = tuple(x.shape[1:])
    images = calibration if precision == "int8" else None
    ir, _ = export_checked(model, workdir / f"m-{precision}.xml", "openvino", shape, check=False,
                           precision=precision, calibration=images)
    runs = {"openvino": lambda n: profile_openvino(ir, x, precision, n)}
    if precision == "bf16":  # onnxruntime's CPU provider has no bf16 convolutions
        return runs
    onnx, _ = export_checked(model, workdir / f"m-{precision}.onnx", "onnx", shape, check=False,
                             precision=precision, calibration=images, exporter="legacy")
    return {"onnxruntime": lambda n: profile_onnxruntime(onnx, x, n), **runs}


def _ours_runs(model: torch.nn.Module, x: torch.Tensor, calibration: list[torch.Tensor],
               precision: str) -> dict[str, Callable[[], object]]:
    import torch._inductor.config as inductor_config

    inductor_config.cpp.enable_kernel_profile = True  # each inductor kernel a named event
    if precision == "int8":
        from splitattn.quantize import quantize

        return {"ours int8": _forward(quantize(model, calibration), x)}
    dtype, suffix = (torch.bfloat16, "+bf16") if precision == "bf16" else (None, "")
    return {f"ours deploy{suffix}": _forward(deploy(model, batch_size=x.shape[0], example_input=x, dtype=dtype), x),
            f"ours deploy+compile{suffix}": _forward(deploy(model, batch_size=x.shape[0], example_input=x,
                                                            compile="inductor", dtype=dtype), x)}


def profile(model_name: str, batch_sizes: Iterable[int], precisions: Iterable[str], img_size: int,
            repeats: int) -> list[dict]:
    """One row per (batch, precision, engine): ms per call by layer type and by kind, and wall time."""
    rows = []
    torch.manual_seed(0)
    model = splitattn.create_model(model_name).eval()
    with tempfile.TemporaryDirectory() as tmp:
        for batch in batch_sizes:
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(batch, 3, img_size, img_size, generator=gen)
            calibration = [torch.randn(max(batch, 4), 3, img_size, img_size, generator=gen) for _ in range(2)]
            n = max(2, repeats // batch)
            for precision in precisions:
                print(f"{model_name} batch {batch} {precision}", flush=True)
                for name, run in _ours_runs(model, x, calibration, precision).items():
                    run()
                    run()  # compiled: the first calls compile
                    ops = profile_torch(run, n)
                    rows.append(_row(model_name, batch, precision, name, ops, _wall_ms(run, n)))
                for name, prof in _engine_runs(model, x, calibration, precision, Path(tmp)).items():
                    ops = prof(n)
                    rows.append(_row(model_name, batch, precision, name, ops, sum(ops.values())))
    return rows


def _row(model: str, batch: int, precision: str, engine: str, ops: dict[str, float], wall_ms: float) -> dict:
    top = dict(sorted(ops.items(), key=lambda kv: -kv[1])[:12])
    return {"model": model, "batch_size": batch, "precision": precision, "engine": engine,
            "wall_ms": wall_ms, "profiled_ms": sum(ops.values()), "kinds_ms": _by_kind(ops), "top_layers_ms": top}


def markdown(rows: list[dict], env: dict) -> str:
    """The report: per (batch, precision), each engine's ms per kind of layer; then each engine's top layers."""
    lines = [f"# Where the time goes: {rows[0]['model']} by kind of layer", "",
             f"{cpu_line(env.get('cpu'))}; torch {env.get('torch')}, {env.get('threads')} threads. "
             "ms per forward pass as each engine's own profiler counts it (profilers add overhead; "
             "`wall` is the median without one for ours, the profiled sum for the engines).", ""]
    groups: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["batch_size"], row["precision"])].append(row)
    for (batch, precision), group in groups.items():
        lines += [f"## batch {batch}, {precision}", "",
                  "| kind | " + " | ".join(r["engine"] for r in group) + " |",
                  "|---|" + "---:|" * len(group)]
        for kind in KINDS:
            cells = [f"{r['kinds_ms'][kind]:.1f} ({r['kinds_ms'][kind] / max(r['profiled_ms'], 1e-9):.0%})"
                     for r in group]
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        lines.append("| **profiled total** | " + " | ".join(f"**{r['profiled_ms']:.1f}**" for r in group) + " |")
        lines.append("| wall | " + " | ".join(f"{r['wall_ms']:.1f}" for r in group) + " |")
        lines.append("")
        for r in group:
            tops = "; ".join(f"{name} {ms:.1f}" for name, ms in list(r["top_layers_ms"].items())[:8])
            lines.append(f"- {r['engine']}: {tops}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnest50")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"], choices=("fp32", "bf16", "int8"))
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=32, help="images profiled per configuration (>= 2 calls)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--out", default="benchmarks/layers", help="output prefix; .json and .md are added")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = profile(args.model, args.batch_sizes, args.precisions, args.img_size, args.repeats)
    env = {**environment(), "cpu": cpu_description()}
    Path(f"{args.out}.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1) + "\n")
    Path(f"{args.out}.md").write_text(markdown(rows, env) + "\n")
    print(markdown(rows, env))


if __name__ == "__main__":
    main()

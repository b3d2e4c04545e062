"""The speed tables of docs/benchmarks.md, from a results file: ``python benchmarks/summary.py [results.json]``.

``run.py`` writes every row; these tables keep the ratios a reader compares (ours against timm in
timm's default layout and against the faster of timm's two layouts) and the roof fractions against
both probes, so the page can be regenerated rather than retyped.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from splitattn.bench.cpu_info import cpu_line
from splitattn.bench.engines import NOISE_CONTROL

HERE = Path(__file__).resolve().parent
INFERENCE_COLUMNS = ("ours eager", "ours deploy", "ours deploy+compile", "ours deploy+aot", "ours deploy+jit",
                     "ours deploy+openvino", "ours deploy+onnxruntime", "onnx", "openvino", "openvino again",
                     "timm->onnx", "timm->openvino", "official")
# Reduced precision, ours and the engines', in a table of its own (each against timm float32 too).
PRECISION_COLUMNS = ("ours deploy", "ours deploy+compile", "ours deploy+aot", "ours deploy+openvino",
                     "ours deploy+onnxruntime", "onnx", "openvino", "timm->onnx", "timm->openvino", "ours deploy+bf16",
                     "ours deploy+compile+bf16", "ours deploy+aot+bf16", "ours deploy+openvino+bf16", "openvino+bf16",
                     "ours int8", "ours int8+aot", "ours int8+openvino", "onnx+int8", "openvino+int8",
                     "timm->openvino+int8")
TRAINING_COLUMNS = ("ours train", "ours train+channels_last", "ours train+ckpt_stage", "ours train+ckpt_block",
                    "official")


def _markdown(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A Markdown table: the header, its rule, one line per row of cells. A column with no value in
    any row (a candidate this results file did not run) is left out."""
    keep = [i for i in range(len(head)) if not body or any(cells[i] != "-" for cells in body)]
    head, body = [head[i] for i in keep], [[cells[i] for i in keep] for cells in body]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(cells) + " |" for cells in body)])


def _ratio(row: dict | None, key: str) -> str:
    return "-" if row is None or row.get(key) is None else f"{row[key]:.2f}x"


def _pair(row: dict | None) -> str:
    """``"1.64x / 1.52x"``: against timm as it comes, and against the faster timm layout."""
    if row is None:
        return "-"
    return f"{_ratio(row, 'speedup_vs_timm')} / {_ratio(row, 'speedup_vs_best_timm')}"


def _groups(rows: Sequence[dict]) -> dict[tuple[str, int], dict[str, dict]]:
    groups: dict[tuple[str, int], dict[str, dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["batch_size"]), {})[row["candidate"]] = row
    return groups


def _roof(row: dict, env: dict) -> str:
    rate = row["roof_fraction"] * row["roof_gflops"]
    matmul = env["roof_probes_gflops"].get("matmul")
    return f"{row['roof_fraction']:.0%}" + (f" ({rate / matmul:.0%} of matmul)" if matmul else "")


def inference_table(rows: Sequence[dict], env: dict) -> str:
    head = ["model", "batch", "timm img/s", "timm channels-last", *INFERENCE_COLUMNS, "roof of deploy"]
    body = []
    for (model, batch), group in _groups(rows).items():
        timm, timm_cl = group.get("timm"), group.get("timm channels_last")
        cells = [model, str(batch), f"{timm['images_per_s']:.1f}" if timm else "-", _ratio(timm_cl, "speedup_vs_timm")]
        cells += [_pair(group.get(label)) for label in INFERENCE_COLUMNS]
        cells.append(_roof(group["ours deploy"], env) if "ours deploy" in group else "-")
        body.append(cells)
    return _markdown(head, body)


def reduced_precision_table(rows: Sequence[dict]) -> str:
    """Ours in float32, bfloat16 and int8 beside the engines, x timm float32 eager; roofs per precision."""
    head = ["model", "batch", *PRECISION_COLUMNS, "roof of bf16", "roof of int8"]
    body = []
    for (model, batch), group in _groups(rows).items():
        cells = [model, str(batch)] + [_ratio(group.get(label), "speedup_vs_timm") for label in PRECISION_COLUMNS]
        for label in ("ours deploy+bf16", "ours int8"):
            row = group.get(label)
            cells.append("-" if row is None or row.get("roof_fraction") is None else
                         f"{row['roof_fraction']:.0%} of {row['roof_gflops']:.0f}")
        body.append(cells)
    return _markdown(head, body)


@dataclass(frozen=True)
class SpeedTarget:
    """One speed target of the performance issue: ours (the fastest of ``ours``) against the fastest of
    ``peers`` that computes in ``precision``; met when ours is at least as fast.

    ``ours`` are the paths on PyTorch's own kernels; ``backends`` the same precision through our
    OpenVINO and onnxruntime backends (``deploy(compile="openvino")``, ``quantize(engine="openvino")``,
    ``deploy(compile="onnxruntime")``), which count in
    "ours at best", the model splitattn hands a user, and not in "PyTorch's kernels alone".
    ``native`` names a precision that is a target only where the CPU computes it natively: on a CPU
    without it the cell says "emulated, not a target" rather than "not met".
    """

    name: str
    ours: tuple[str, ...]
    peers: tuple[str, ...]
    precision: str
    native: str | None = None
    backends: tuple[str, ...] = ()


SPEED_TARGETS = (
    SpeedTarget("int8 vs OpenVINO int8 (NNCF)", ("ours int8", "ours int8+aot"), ("openvino+int8",), "int8",
                backends=("ours int8+openvino",)),
    SpeedTarget("int8 vs timm->OpenVINO int8", ("ours int8", "ours int8+aot"), ("timm->openvino+int8",), "int8",
                backends=("ours int8+openvino",)),
    SpeedTarget("fp32, our best vs the faster of ONNX Runtime and OpenVINO",
                ("ours deploy", "ours deploy+compile", "ours deploy+aot"),
                ("onnx", "openvino", "timm->onnx", "timm->openvino"), "float32",
                backends=("ours deploy+openvino", "ours deploy+onnxruntime")),
    SpeedTarget("bf16 vs OpenVINO bf16", ("ours deploy+bf16", "ours deploy+compile+bf16", "ours deploy+aot+bf16"),
                ("openvino+bf16", "openvino", "timm->openvino"),
                "bfloat16", native="bfloat16", backends=("ours deploy+openvino+bf16",)),
)
EMULATED = "emulated, not a target"


def _fastest(group: dict[str, dict], labels: Sequence[str], precision: str | None = None) -> dict | None:
    rows = [group[label] for label in labels if label in group
            and (precision is None or group[label].get("precision", "float32") == precision)]
    return max(rows, key=lambda row: row["images_per_s"]) if rows else None


def _short(label: str) -> str:
    return label.removeprefix("ours ")


def _target_cell(group: dict[str, dict], target: SpeedTarget, cpu: dict | None, with_backends: bool) -> str:
    if target.native == "bfloat16" and cpu and not cpu.get("native_bf16"):
        return EMULATED
    labels = (*target.ours, *target.backends) if with_backends else target.ours
    ours, peer = _fastest(group, labels, target.precision), _fastest(group, target.peers, target.precision)
    if ours is None or peer is None:
        return "-"
    ratio = ours["images_per_s"] / peer["images_per_s"]
    present = [label for label in (*labels, *target.peers) if label in group]
    which = f" ({_short(ours['candidate'])} vs {peer['candidate']})" if len(present) > 2 else ""
    rounds = _rounds_won(ours, peer)
    if rounds is None:  # a results file from before rows kept their rounds: the noise control's word
        noise = _noise(group)
        close = noise is not None and 1 - noise <= ratio < 1
        return f"{ratio:.2f}x {'met' if ratio >= 1 else 'not met'}{which}{', within the noise' if close else ''}"
    won, count = rounds
    verdict = "met" if ratio >= 1 else "not met" if _slower_beyond_chance(won, count) else "tie"
    return f"{ratio:.2f}x {verdict}{which}, faster in {won} of {count} rounds"


def _rounds_won(ours: dict, peer: dict) -> tuple[int, int] | None:
    """(rounds ours was at least as fast in, rounds), pairing the two rows' i-th timed rounds; None
    without per-round times. Paired, the rounds cancel what drifts across a run (the VM's load)."""
    mine, theirs = ours.get("round_ms"), peer.get("round_ms")
    if not mine or not theirs or len(mine) != len(theirs):
        return None
    return sum(a <= b for a, b in zip(mine, theirs, strict=True)), len(mine)


SIGN_TEST_LEVEL = 0.05


def _slower_beyond_chance(won: int, rounds: int) -> bool:
    """The one-sided sign test: winning ``won`` or fewer of ``rounds`` paired rounds has less than a
    5% chance if both ran equally fast. With 10 rounds that is one win or none; with 5, none."""
    return sum(math.comb(rounds, k) for k in range(won + 1)) / 2**rounds < SIGN_TEST_LEVEL


def _noise(group: dict[str, dict]) -> float | None:
    """How far apart the two identical OpenVINO fp32 setups ran (1 - slower / faster), or None."""
    first, again = group.get("openvino"), group.get(NOISE_CONTROL)
    if first is None or again is None:
        return None
    rates = sorted((first["images_per_s"], again["images_per_s"]))
    return 1 - rates[0] / rates[1]


def targets_table(rows: Sequence[dict], env: dict | None = None, with_backends: bool = True) -> str:
    """Each speed target per model and batch: ours / the peer's images/s, met when >= 1.

    Ours is the fastest of our paths in the target's precision: with ``with_backends`` our OpenVINO
    backend included (what splitattn hands the user), else PyTorch's own kernels alone. A peer
    counts only in the target's precision (OpenVINO asked for its default computes bf16 where the
    CPU has it, f32 elsewhere: that row is a bf16 peer on one CPU and an fp32 one on the other).
    Where ours or the peer is the faster of several, the cell names both. bf16 on a CPU that lacks
    it (``env["cpu"]``, :mod:`splitattn.bench.cpu_info`) is marked emulated.

    A target below 1.0x is "not met" only where the rounds say ours is slower: paired round by
    round, ours won so few that equal speed would give that less than 5% of the time (a sign
    test); otherwise it is a "tie", which is not "met" either. Each cell says how many rounds ours
    won. The last column is the run's noise, read from the same OpenVINO setup timed twice; rows
    without per-round times (older results files) fall back to it: a target missed by less than
    that says "within the noise".
    """
    cpu = (env or {}).get("cpu")
    head = ["model", "batch", *(target.name for target in SPEED_TARGETS), "noise: OpenVINO fp32 set up twice"]
    body = []
    for (model, batch), group in _groups(rows).items():
        noise = _noise(group)
        body.append([model, str(batch), *(_target_cell(group, target, cpu, with_backends) for target in SPEED_TARGETS),
                     "-" if noise is None else f"{noise:.0%} apart"])
    return _markdown(head, body)


# Targets on the digits model (precision rows) and on loading: (name, measured, met) per row.
INT8_AGREEMENT, INT8_TOP1_GAP, BF16_AGREEMENT, LOAD_SECONDS = 99.0, 0.5, 99.5, 5.0


# The int8 rows the accuracy targets apply to: each engine's default int8 (run.py's labels).
INT8_ROWS = {"int8": "int8", "int8 (openvino)": "int8 through OpenVINO"}


def _accuracy_targets(rows: Sequence[dict]) -> list[tuple[str, str, str]]:
    by = {row["precision"]: row for row in rows}
    found = []
    for label, name in INT8_ROWS.items():
        if label not in by:
            continue
        int8, fp32 = by[label], by.get("float32")
        found.append((f"{name} top-1 agreement with float32 >= {INT8_AGREEMENT:.0f}% ({int8['model']}, digits)",
                      f"{int8['agreement']:.2f}%", "met" if int8["agreement"] >= INT8_AGREEMENT else "not met"))
        if fp32 is not None:
            gap = fp32["top1"] - int8["top1"]
            measured = f"{abs(gap):.2f} points {'below' if gap >= 0 else 'above'}"
            found.append((f"{name} top-1 within {INT8_TOP1_GAP} points of float32", measured,
                          "met" if gap <= INT8_TOP1_GAP else "not met"))
    if "bfloat16" in by:
        bf16 = by["bfloat16"]
        found.append((f"bf16 top-1 agreement with float32 >= {BF16_AGREEMENT}%", f"{bf16['agreement']:.2f}%",
                      "met" if bf16["agreement"] >= BF16_AGREEMENT else "not met"))
    return found


def _load_targets(rows: Sequence[dict]) -> list[tuple[str, str, str]]:
    found = []
    for row in rows:
        seconds = row["load_and_first_batch_s"]
        measured = (f"{seconds:.1f} s load + first batch in the process; {row['process_to_first_output_s']:.1f} s "
                    f"from process start (Python and torch imports included); "
                    f"{row['graphs_compiled_at_load']} graphs compiled")
        met = seconds < LOAD_SECONDS and row["graphs_compiled_at_load"] == 0
        found.append((f"{row['package']} of {row['model']} at {row['img_size']} px, batch {row['batch_size']}: "
                      f"loaded and first batch run under {LOAD_SECONDS:.0f} s", measured, "met" if met else "not met"))
    return found


def other_targets_table(results: dict) -> str:
    """The accuracy and load-time targets: what each asks, what was measured, met or not."""
    found = _accuracy_targets(results.get("precision") or []) + _load_targets(results.get("load") or [])
    return _markdown(("target", "measured", "verdict"), found)


def setups_table(rows: Sequence[dict]) -> str:
    """How each candidate was built and configured, from the first configuration that ran it (the
    others differ only in their batch and model)."""
    seen: dict[str, dict] = {}
    for row in rows:
        if row.get("setup") and row["candidate"] not in seen:
            seen[row["candidate"]] = row
    return _markdown(("candidate", "as built (first configuration)", "setup"),
                     [(label, f"{row['model']}, batch {row['batch_size']}",
                       "; ".join(f"{key}: {value}" for key, value in row["setup"].items()))
                      for label, row in seen.items()])


def accuracy_table(rows: Sequence[dict]) -> str:
    return _markdown(("model", "precision", "top-1", "top-1 agreement with float32", "images"),
                     [(row["model"], row["precision"], f"{row['top1']:.2f}%", f"{row['agreement']:.2f}%",
                       str(row["images"])) for row in rows])


def load_table(rows: Sequence[dict]) -> str:
    return _markdown(("model", "package", "px", "batch", "MiB", "process start to first output", "load + first batch",
                      "imports", "graphs compiled at load"),
                     [(row["model"], row["package"], str(row["img_size"]), str(row["batch_size"]),
                       f"{row['package_mb']:.0f}", f"{row['process_to_first_output_s']:.1f} s",
                       f"{row['load_and_first_batch_s']:.2f} s", f"{row['import_s']:.1f} s",
                       str(row["graphs_compiled_at_load"])) for row in rows])


def training_table(rows: Sequence[dict]) -> str:
    head = ["model", "timm img/s", "timm peak MiB", "timm channels-last", *TRAINING_COLUMNS]
    body = []
    for (model, _), group in _groups(rows).items():
        timm, timm_cl = group.get("timm"), group.get("timm channels_last")
        cells = [model, f"{timm['images_per_s']:.1f}" if timm else "-",
                 f"{timm['peak_mem_mb']:.0f}" if timm and timm["peak_mem_mb"] else "-",
                 _ratio(timm_cl, "speedup_vs_timm")]
        for label in TRAINING_COLUMNS:
            row = group.get(label)
            cells.append("-" if row is None else f"{_pair(row)}, mem {_ratio(row, 'mem_vs_timm')}")
        body.append(cells)
    return _markdown(head, body)


def scaling_table(rows: Sequence[dict]) -> str:
    return _markdown(("model", "px", "GFLOPs / image", "images/s", "ms", "roof"),
                     [(row["model"], str(row["img_size"]), f"{row['gflops_per_image']:.1f}",
                       f"{row['images_per_s']:.1f}", f"{row['median_ms']:.0f}", f"{row['roof_fraction']:.0%}")
                      for row in rows])


def tables(results: dict) -> dict[str, str]:
    """Each table the results file has data for, by its title (the line docs/benchmarks.md puts above it)."""
    env, found = results["environment"], {}
    if results.get("inference"):
        found["Inference (each cell: x timm / x the faster timm layout):"] = inference_table(results["inference"], env)
        found["Reduced precision (images/s x timm float32 eager; the roofs in GFLOP/s of each precision):"] = \
            reduced_precision_table(results["inference"])
        where = cpu_line(env.get("cpu"))
        found[f"Speed targets on {where} (ours at best, our OpenVINO and onnxruntime backends included / the peer, "
              "images/s; met when at least 1.00x):"] = targets_table(results["inference"], env)
        found[f"The same targets with PyTorch's own kernels alone (deploy, compile, AOT, int8 through inductor) "
              f"on {where}:"] = targets_table(results["inference"], env, with_backends=False)
        if any(row.get("setup") for row in results["inference"]):
            found["Setups (each candidate's engine, shapes, hints and checks):"] = setups_table(results["inference"])
    if results.get("precision"):
        found["Accuracy of reduced precision (digits validation images):"] = accuracy_table(results["precision"])
    if results.get("precision") or results.get("load"):
        found["Accuracy and load-time targets:"] = other_targets_table(results)
    if results.get("load"):
        found["Loading a saved package and running its first batch, in a fresh process:"] = \
            load_table(results["load"])
    if results.get("training"):
        found["Training step (x timm / x the faster timm layout, and peak memory x timm):"] = \
            training_table(results["training"])
    if results.get("scaling"):
        found["Scaling (deploy mode, batch 1):"] = scaling_table(results["scaling"])
    return found


def summary(results: dict) -> str:
    return "\n\n".join(f"{title}\n\n{table}" for title, table in tables(results).items())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The benchmark's tables and target verdicts, from a results file.")
    parser.add_argument("results", nargs="?", type=Path, default=HERE / "results.json",
                        help="a .json file of benchmarks/run.py or splitattn bench (default: benchmarks/results.json)")
    path = parser.parse_args(argv).results
    if not path.is_file():
        parser.error(f"no results file at {path}")
    print(summary(json.loads(path.read_text())))


if __name__ == "__main__":
    main()

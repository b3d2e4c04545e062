"""The speed tables of docs/benchmarks.md, from a results file: ``python benchmarks/summary.py [results.json]``.

``run.py`` writes every row; these tables keep the ratios a reader compares (ours against timm in
timm's default layout and against the faster of timm's two layouts) and the roof fractions against
both probes, so the page can be regenerated rather than retyped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
INFERENCE_COLUMNS = ("ours eager", "ours deploy", "ours deploy+compile", "ours deploy+jit", "onnx", "openvino",
                     "official")
# Reduced precision, ours and the engines', in a table of its own (each against timm float32 too).
PRECISION_COLUMNS = ("ours deploy", "ours deploy+compile", "onnx", "openvino", "ours deploy+bf16", "ours int8",
                     "onnx+int8", "openvino+int8")
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


# The performance issue's speed targets: (name, our candidates, the peers to beat). Ours is the faster
# of its candidates, the peer the faster of its; "met" needs ours >= peer.
SPEED_TARGETS = (
    ("int8 vs OpenVINO int8", ("ours int8",), ("openvino+int8",)),
    ("bf16 vs OpenVINO default", ("ours deploy+bf16",), ("openvino",)),
    ("fp32 deploy vs onnxruntime and OpenVINO fp32", ("ours deploy",), ("onnx", "openvino")),
    ("fp32 deploy+compile vs the same", ("ours deploy+compile",), ("onnx", "openvino")),
)


def _fastest(group: dict[str, dict], labels: Sequence[str]) -> dict | None:
    rows = [group[label] for label in labels if label in group]
    return max(rows, key=lambda row: row["images_per_s"]) if rows else None


def targets_table(rows: Sequence[dict]) -> str:
    """Each speed target per model and batch: ours / the peer's images/s, met when >= 1.

    The peer's precision is named where it is not the target's (OpenVINO's default is float32 on a
    CPU without native bf16), so a "met" against a different precision reads as what it is.
    """
    head = ["model", "batch", *(name for name, _, _ in SPEED_TARGETS)]
    body = []
    for (model, batch), group in _groups(rows).items():
        cells = [model, str(batch)]
        for _, ours_labels, peer_labels in SPEED_TARGETS:
            ours, peer = _fastest(group, ours_labels), _fastest(group, peer_labels)
            if ours is None or peer is None:
                cells.append("-")
                continue
            ratio = ours["images_per_s"] / peer["images_per_s"]
            ran = f", {peer['candidate']} in {peer['precision']}" if peer.get("precision") != ours.get(
                "precision") else ""
            cells.append(f"{ratio:.2f}x {'met' if ratio >= 1 else 'not met'}{ran}")
        body.append(cells)
    return _markdown(head, body)


def accuracy_table(rows: Sequence[dict]) -> str:
    return _markdown(("model", "precision", "top-1", "top-1 agreement with float32", "images"),
                     [(row["model"], row["precision"], f"{row['top1']:.2f}%", f"{row['agreement']:.2f}%",
                       str(row["images"])) for row in rows])


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
        found["Speed targets (ours / the peer, images/s; met when at least 1.00x):"] = \
            targets_table(results["inference"])
    if results.get("precision"):
        found["Accuracy of reduced precision (digits validation images):"] = accuracy_table(results["precision"])
    if results.get("training"):
        found["Training step (x timm / x the faster timm layout, and peak memory x timm):"] = \
            training_table(results["training"])
    if results.get("scaling"):
        found["Scaling (deploy mode, batch 1):"] = scaling_table(results["scaling"])
    return found


def summary(results: dict) -> str:
    return "\n\n".join(f"{title}\n\n{table}" for title, table in tables(results).items())


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else HERE / "results.json"
    print(summary(json.loads(path.read_text())))


if __name__ == "__main__":
    main()

"""Smoke tests of the benchmark machinery: one or two iterations, never a timing assertion."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from splitattn.bench import (
    BenchConfig,
    LiveTensorBytes,
    TimingSummary,
    interleaved_times,
    markdown_table,
    peak_memory,
    run_config,
)
from splitattn.bench.references import official_name, timm_name
from splitattn.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_interleaved_times_and_summary():
    calls = []
    times = interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                              torch.device("cpu"), warmup=1, repeats=2)
    assert calls == ["a", "b"] * 3
    assert [len(v) for v in times.values()] == [2, 2]
    summary = TimingSummary.of([0.1, 0.2, 0.3], batch_size=4)
    assert summary.median_ms == pytest.approx(200) and summary.p90_ms == pytest.approx(300)
    assert summary.images_per_s == pytest.approx(20)


def test_live_tensor_bytes_sees_forward_and_backward_allocations():
    weight = torch.randn(256, 256, requires_grad=True)
    peak, how = peak_memory(lambda: (torch.randn(64, 256) @ weight).relu().sum().backward(), torch.device("cpu"))
    assert "tensor bytes" in how
    assert peak >= weight.numel() * 4  # at least the gradient of ``weight``
    with LiveTensorBytes() as counter:
        kept = torch.empty(1000)
        del kept
    assert counter.peak >= 4000 and counter.current == 0


def test_reference_names():
    assert timm_name("resnest50") == "resnest50d" and official_name("resnest50d") == "resnest50"
    assert timm_name("seresnet50") == "seresnet50" and official_name("seresnet50") is None
    assert timm_name("resnest50_fast_2s1x64d") is None


def test_run_config_inference_and_training_rows():
    config = BenchConfig("resnest14d", batch_size=1, img_size=32)
    rows = run_config(config, "inference", ("eager", "deploy"), warmup=0, repeats=1, roof_flops=1e11)
    labels = [row.candidate for row in rows]
    assert labels[:2] == ["ours eager", "ours deploy"]
    assert "timm" in labels, "timm is a test dependency: the reference must be benchmarked"
    timm_row, ours = rows[labels.index("timm")], rows[0]
    # "x timm" is timm's median time per batch over ours, measured in the same rounds
    assert ours.speedup_vs_timm == pytest.approx(timm_row.median_ms / ours.median_ms, rel=1e-6)
    assert "timm channels_last" in labels, "timm runs in both layouts so 'x best timm' means something"
    assert all(row.speedup_vs_best_timm <= row.speedup_vs_timm + 1e-9 for row in rows)
    assert all(row.gflops_per_image > 0 and row.roof_fraction > 0 for row in rows)
    with pytest.raises(ValueError, match="training needs batch_size >= 2"):
        run_config(config, "training", ("train",), references=False)
    config = BenchConfig("resnest14d", batch_size=2, img_size=32)
    rows = run_config(config, "training", ("train", "train+ckpt_block"), warmup=0, repeats=1, references=False)
    assert [row.candidate for row in rows] == ["ours train", "ours train+ckpt_block"]
    assert all(row.peak_mem_mb > 0 for row in rows)
    assert "| ours train |" in markdown_table(rows)
    with pytest.raises(ValueError, match="unknown inference variants"):
        run_config(config, "inference", ("eager", "tensorrt"))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        BenchConfig("resnest14d", batch_size=0)


def test_bench_cli_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "resnet18", "--img-size", "32", "--repeats", "1", "--warmup", "0",
                 "--variants", "deploy", "--no-references", "--json", str(out)])
    assert code == 0
    assert "ours deploy" in capsys.readouterr().out
    data = json.loads(out.read_text())
    env = data["environment"]
    assert env["roof_gflops"] == pytest.approx(max(env["roof_probes_gflops"].values()))
    assert set(env["roof_probes_gflops"]) == {"matmul", "conv3x3"} and data["rows"][0]["candidate"] == "ours deploy"
    assert main(["bench", "resnet1000", "--repeats", "1"]) == 2
    assert "unknown model" in capsys.readouterr().err


def _summary_module():
    """benchmarks/summary.py, which is a script beside the suite, not part of the package."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import summary
    finally:
        sys.path.pop(0)
    return summary


def test_benchmark_summary_tables_condense_the_rows():
    config = BenchConfig("resnest14d", batch_size=1, img_size=32)
    rows = run_config(config, "inference", ("eager", "deploy"), warmup=0, repeats=1, roof_flops=1e11, memory=False)
    env = {"roof_probes_gflops": {"matmul": 50.0, "conv3x3": 100.0}}
    text = _summary_module().summary({"environment": env, "inference": [row.as_dict() for row in rows]})
    line = next(line for line in text.splitlines() if line.startswith("| resnest14d | 1 |"))
    deploy = rows[[row.candidate for row in rows].index("ours deploy")]
    assert f"{deploy.speedup_vs_timm:.2f}x / {deploy.speedup_vs_best_timm:.2f}x" in line
    assert f"{deploy.roof_fraction:.0%} ({deploy.roof_fraction * deploy.roof_gflops / 50:.0%} of matmul)" in line


def test_benchmark_summary_states_each_speed_target_as_met_or_not():
    speeds = {"ours int8": ("int8", 10.0), "openvino+int8": ("int8", 8.0), "ours deploy+bf16": ("bfloat16", 3.0),
              "openvino": ("float32", 6.0), "ours deploy": ("float32", 5.0), "onnx": ("float32", 4.0)}
    rows = [{"model": "resnest50", "batch_size": 16, "candidate": label, "precision": precision, "images_per_s": rate}
            for label, (precision, rate) in speeds.items()]
    head, _, line = (row.split(" | ") for row in _summary_module().targets_table(rows).splitlines())
    assert line[2] == "1.25x met"
    assert line[3] == "0.50x not met, openvino in float32"  # OpenVINO's default ran in float32: said so
    assert line[4] == "0.83x not met |"  # against the faster of onnxruntime and OpenVINO
    assert len(head) == 5 and "compile" not in " ".join(head)  # no deploy+compile row: no column, no claim


@pytest.mark.parametrize(("results", "titles"), [
    ("results.json", ("Inference", "Training step", "Scaling")),
    ("precision.json", ("Reduced precision", "Speed targets", "Accuracy of reduced precision")),
])
def test_benchmark_page_tables_are_what_the_summary_makes_of_the_committed_results(results, titles):
    """The benchmark page's tables are regenerated from benchmarks/*.json, never retyped: each is exactly
    what ``python benchmarks/summary.py benchmarks/FILE`` prints (paste its output to update them)."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    made = _summary_module().tables(json.loads((ROOT / "benchmarks" / results).read_text()))
    for title in titles:
        [table] = [table for heading, table in made.items() if heading.startswith(title)]
        assert table in page, f"docs/benchmarks.md's {title!r} table differs from the summary of benchmarks/{results}"

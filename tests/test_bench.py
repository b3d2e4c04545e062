"""Smoke tests of the benchmark machinery: one or two iterations, never a timing assertion."""

from __future__ import annotations

import itertools
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
# The engine candidates' tests check how each is set up, built and called, which is the same for any
# network: they run on the plainest zoo model, whose conversions, quantizations and compiles take
# half the time a ResNeSt's do. The attention's int8 and engine paths are tested in test_quantize,
# test_openvino_backend and test_onnxruntime_backend.
ENGINE_MODEL = "resnet18"


def test_interleaved_times_and_summary(monkeypatch):
    import splitattn.bench.timing as timing

    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = interleaved_times(fns, torch.device("cpu"), warmup=1, repeats=2)
    # a warm-up round, then two timed rounds; each timed call follows 0.1 s of untimed ones of its own
    runs = [(name, len(list(group))) for name, group in itertools.groupby(calls)]
    assert [name for name, _ in runs] == ["a", "b"] * 3 and all(count > 2 for _, count in runs[2:])
    calls.clear()
    monkeypatch.setattr(timing, "SETTLE_SECONDS", 0.0)  # the least settling: one untimed call
    interleaved_times(fns, torch.device("cpu"), warmup=1, repeats=2)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 2
    assert [len(v) for v in times.values()] == [2, 2]
    calls.clear()
    interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                      torch.device("cpu"), warmup=0, repeats=1, settle=False)
    assert calls == ["a", "b"]
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


AVX512_BF16 = {"name": "Test CPU", "instruction_sets": {"AVX2": True, "AVX-512": True, "AVX-512 BF16": True,
                                                          "AMX-BF16": False}, "native_bf16": True, "native_int8": True}
AVX2_ONLY = {"name": "Test CPU", "instruction_sets": {"AVX2": True, "AVX-512": False, "AVX-512 BF16": False,
                                                       "AMX-BF16": False}, "native_bf16": False, "native_int8": False}


def _target_rows(speeds: dict[str, tuple[str, float]]) -> list[dict]:
    return [{"model": "resnest50", "batch_size": 16, "candidate": label, "precision": precision, "images_per_s": rate}
            for label, (precision, rate) in speeds.items()]


def test_benchmark_summary_states_each_speed_target_as_met_or_not():
    summary = _summary_module()
    speeds = {"ours int8": ("int8", 10.0), "openvino+int8": ("int8", 8.0), "timm->openvino+int8": ("int8", 12.5),
              "ours deploy": ("float32", 5.0), "ours deploy+compile": ("float32", 5.5), "onnx": ("float32", 4.0),
              "openvino": ("float32", 6.0), "timm->openvino": ("bfloat16", 9.0),  # bf16 by default: no fp32 peer
              "ours deploy+bf16": ("bfloat16", 3.0), "openvino+bf16": ("bfloat16", 4.0)}
    text = summary.targets_table(_target_rows(speeds), {"cpu": AVX512_BF16})
    head, _, line = ([cell.strip() for cell in row.strip("|").split("|")] for row in text.splitlines())
    cells = dict(zip(head, line, strict=True))
    assert cells["int8 vs OpenVINO int8 (NNCF)"] == "1.25x met"
    assert cells["int8 vs timm->OpenVINO int8"] == "0.80x not met"
    # our best fp32 path against the faster fp32 engine; timm->openvino ran bf16, so it is no fp32 peer
    assert cells["fp32, our best vs the faster of ONNX Runtime and OpenVINO"] == \
        "0.92x not met (deploy+compile vs openvino)"
    assert cells["bf16 vs OpenVINO bf16"] == "0.33x not met (deploy+bf16 vs timm->openvino)"
    # the faster of our bf16 paths counts: eager, compiled or ahead of time
    bf16_paths = {"ours deploy+compile+bf16": ("bfloat16", 6.0), "ours deploy+aot+bf16": ("bfloat16", 9.5)}
    text = summary.targets_table(_target_rows({**speeds, **bf16_paths}), {"cpu": AVX512_BF16})
    assert "| 1.06x met (deploy+aot+bf16 vs timm->openvino) |" in text
    # on a CPU without native bf16 the bf16 row is emulated: not a target, not "not met"
    text = summary.targets_table(_target_rows(speeds), {"cpu": AVX2_ONLY})
    assert text.splitlines()[-1].endswith("| emulated, not a target |")
    # no deploy+compile row: the best fp32 path is deploy; a target without its peer's row is no column, no claim
    del speeds["ours deploy+compile"], speeds["openvino+int8"]
    head, _, line = summary.targets_table(_target_rows(speeds), {"cpu": AVX512_BF16}).splitlines()
    assert "OpenVINO int8 (NNCF)" not in head and "| 16 | 0.80x not met | 0.83x not met (deploy vs openvino) |" in line


def test_a_target_missed_by_a_few_percent_is_a_tie_unless_the_paired_rounds_say_slower():
    """Rows that keep their rounds are compared round by round (a sign test), not by one median."""
    summary = _summary_module()
    tied = [100.0, 99, 103, 99, 101, 102, 97, 100, 104, 99]  # ms per round; equal speed
    speeds = {"ours int8": ("int8", 9.8), "openvino+int8": ("int8", 10.0),  # 0.98x: ours won 3 of 10 rounds
              "ours deploy": ("float32", 9.0), "openvino": ("float32", 10.0),  # 0.90x: ours won 1 of 10
              "ours deploy+bf16": ("bfloat16", 10.5), "openvino+bf16": ("bfloat16", 10.0)}
    rounds = {"ours int8": tied, "openvino+int8": [99.0, 100, 100, 100, 100, 101, 98, 99, 101, 98],
              "ours deploy": [111.0] * 9 + [99], "openvino": [100.0] * 10,
              "ours deploy+bf16": [95.0] * 10, "openvino+bf16": tied}
    rows = [{**row, "round_ms": rounds[row["candidate"]]} for row in _target_rows(speeds)]
    head, _, line = ([cell.strip() for cell in row.strip("|").split("|")] for row in
                     summary.targets_table(rows, {"cpu": AVX512_BF16}).splitlines())
    cells = dict(zip(head, line, strict=True))
    assert cells["int8 vs OpenVINO int8 (NNCF)"] == "0.98x tie, faster in 3 of 10 rounds"
    fp32 = "fp32, our best vs the faster of ONNX Runtime and OpenVINO"
    assert cells[fp32] == "0.90x not met, faster in 1 of 10 rounds"
    assert cells["bf16 vs OpenVINO bf16"] == "1.05x met (deploy+bf16 vs openvino+bf16), faster in 10 of 10 rounds"
    # with five rounds only losing all five is beyond chance (1/32); rounds of unequal count are not paired
    assert summary._slower_beyond_chance(0, 5) and not summary._slower_beyond_chance(1, 5)
    assert summary._rounds_won({"round_ms": [1.0, 2.0]}, {"round_ms": [1.0]}) is None


def test_speed_targets_count_our_engine_backends_in_ours_at_best_and_not_in_pytorchs_kernels():
    summary = _summary_module()
    speeds = {"ours int8": ("int8", 7.0), "ours int8+openvino": ("int8", 7.84), "openvino+int8": ("int8", 8.0),
              "ours deploy": ("float32", 5.0), "ours deploy+openvino": ("float32", 6.1), "openvino": ("float32", 6.0),
              "ours deploy+onnxruntime": ("float32", 6.2),  # the faster of our two backends is ours at best
              "openvino again": ("float32", 6.3),  # the same setup twice: 5% apart is this run's noise
              "ours deploy+openvino+bf16": ("float32", 5.9)}  # asked for bf16, ran f32: not a bf16 row of ours
    rows, cpu = _target_rows(speeds), {"cpu": AVX512_BF16}

    def cells(text: str) -> dict[str, str]:
        head, _, line = ([cell.strip() for cell in row.strip("|").split("|")] for row in text.splitlines())
        return dict(zip(head, line, strict=True))

    best = cells(summary.targets_table(rows, cpu))
    kernels = cells(summary.targets_table(rows, cpu, with_backends=False))
    fp32 = "fp32, our best vs the faster of ONNX Runtime and OpenVINO"
    assert best["int8 vs OpenVINO int8 (NNCF)"] == "0.98x not met (int8+openvino vs openvino+int8), within the noise"
    assert best["noise: OpenVINO fp32 set up twice"] == "5% apart"
    assert kernels["int8 vs OpenVINO int8 (NNCF)"] == "0.88x not met"
    assert best[fp32] == "1.03x met (deploy+onnxruntime vs openvino)"
    assert kernels[fp32] == "0.83x not met"  # one of ours and one peer: nothing to name
    made = summary.tables({"environment": cpu, "inference": [r for r in rows if r["candidate"] != "ours deploy"]})
    assert sum(title.startswith(("Speed targets", "The same targets with PyTorch")) for title in made) == 2


def test_benchmark_summary_names_the_cpu_and_each_candidates_setup():
    summary = _summary_module()
    rows = _target_rows({"ours int8": ("int8", 10.0), "openvino+int8": ("int8", 8.0)})
    rows[1]["setup"] = {"input": "static [16, 3, 224, 224] (reshaped)", "PERFORMANCE_HINT": "LATENCY"}
    made = summary.tables({"environment": {"cpu": AVX2_ONLY}, "inference": rows})
    [title] = [title for title in made if title.startswith("Speed targets")]
    assert "Test CPU with AVX2; without AVX-512, AVX-512 BF16, AMX-BF16" in title
    setups = made["Setups (each candidate's engine, shapes, hints and checks):"]
    assert "| openvino+int8 | resnest50, batch 16 | input: static [16, 3, 224, 224] (reshaped); " \
           "PERFORMANCE_HINT: LATENCY |" in setups
    old = summary.tables({"environment": {}, "inference": rows[:1]})  # a results file from before: no CPU, no setup
    assert any("a CPU this results file does not describe" in title for title in old)
    assert not any(title.startswith("Setups") for title in old)


def test_benchmark_summary_states_the_accuracy_and_load_time_targets():
    precision = [{"model": "resnest14d", "precision": "float32", "top1": 98.9, "agreement": 100.0, "images": 359},
                 {"model": "resnest14d", "precision": "int8", "top1": 98.2, "agreement": 99.2, "images": 359},
                 {"model": "resnest14d", "precision": "int8 (openvino)", "top1": 98.9, "agreement": 98.6,
                  "images": 359}]
    load = [{"model": "resnest50", "package": "int8 AOT package", "img_size": 224, "batch_size": 1, "package_mb": 30.0,
             "process_to_first_output_s": 6.5, "load_and_first_batch_s": 1.2, "import_s": 4.0,
             "graphs_compiled_at_load": 0},
            {"model": "resnest50", "package": "fp32 AOT package", "img_size": 224, "batch_size": 1, "package_mb": 98.0,
             "process_to_first_output_s": 9.0, "load_and_first_batch_s": 5.5, "import_s": 3.0,
             "graphs_compiled_at_load": 0}]
    made = _summary_module().tables({"environment": {}, "precision": precision, "load": load})
    table = made["Accuracy and load-time targets:"]
    assert "| int8 top-1 agreement with float32 >= 99% (resnest14d, digits) | 99.20% | met |" in table
    assert "| int8 top-1 within 0.5 points of float32 | 0.70 points below | not met |" in table
    assert "| int8 through OpenVINO top-1 agreement with float32 >= 99% (resnest14d, digits) | 98.60% | not met |" \
        in table  # each engine's int8 is held to the same targets
    assert "| int8 through OpenVINO top-1 within 0.5 points of float32 | 0.00 points below | met |" in table
    int8_line, fp32_line = (line for line in table.splitlines() if "AOT package" in line)
    assert int8_line.endswith("| met |") and "1.2 s load + first batch" in int8_line
    assert "6.5 s from process start" in int8_line
    assert fp32_line.endswith("| not met |")  # 5.5 s: over the 5 s target
    assert "| resnest50 | int8 AOT package | 224 | 1 | 30 | 6.5 s | 1.20 s | 4.0 s | 0 |" in \
        made["Loading a saved package and running its first batch, in a fresh process:"]


def test_compiled_candidates_hold_one_static_graph_from_build_on():
    """Build and first call together compile one graph (deploy compiles and checks it, the first call
    reuses it); a second shape that dynamo turns into a symbolic batch, or a shape that reuses such a
    graph, or a later call that compiles again, is refused."""
    from splitattn.bench.compile_check import checked_compiled
    from splitattn.deploy import deploy
    from splitattn.errors import SplitattnError

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1)).eval()
    x = torch.randn(2, 3, 8, 8)
    built = []

    def build():
        built.append(deploy(net, batch_size=2, example_input=x, compile="inductor"))
        return lambda: built[0](x)

    with torch.no_grad():
        run = checked_compiled(build, "tiny deploy+compile")
        run()  # a timed call: nothing compiled
        def forward(inputs):  # a fresh function: dynamo's automatic dynamic shapes, unlike deploy's static ones
            return net(inputs).relu()

        compiled = torch.compile(forward)
        checked_compiled(lambda: lambda: compiled(torch.randn(2, 3, 8, 8)), "batch 2")  # first shape: static
        with pytest.raises(SplitattnError, match=r"batch 3: .* compiled 1 graph\(s\) .* symbolic sizes"):
            checked_compiled(lambda: lambda: compiled(torch.randn(3, 3, 8, 8)), "batch 3")
        with pytest.raises(SplitattnError, match=r"batch 4: its build and first call compiled 0 graph\(s\)"):
            checked_compiled(lambda: lambda: compiled(torch.randn(4, 3, 8, 8)), "batch 4")  # reuses the dynamic one
        other = torch.compile(lambda inputs: net(inputs) * 2, dynamic=False)
        inputs = [torch.randn(5, 3, 8, 8)]
        run = checked_compiled(lambda: lambda: other(inputs[0]), "batch 5")
        inputs[0] = torch.randn(6, 3, 8, 8)  # a timed call at another shape would time a compile
        with pytest.raises(SplitattnError, match="batch 5: a call after its checked first two compiled 1"):
            run()


def test_engine_peers_run_with_their_setup_recorded(tmp_path):
    """Ours exported to OpenVINO runs at the static batch with the LATENCY hint; timm's model
    converted plainly runs at OpenVINO's defaults; each says so, and says what it computed in."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from splitattn.bench.candidates import inference_candidates

    config = BenchConfig(ENGINE_MODEL, batch_size=2, img_size=32)
    candidates = inference_candidates(config, ("onnx", "openvino", "timm->openvino+int8"), references=False,
                                      workdir=tmp_path)
    by = {candidate.label: candidate for candidate in candidates}
    assert by["openvino"].setup["input"] == "static [2, 3, 32, 32] (reshaped)"
    assert by["openvino"].setup["PERFORMANCE_HINT"] == "LATENCY" and by["openvino"].precision == "float32"
    assert by["onnx"].setup["input"] == "static [2, 3, 32, 32] (free dimension 'batch' fixed)"
    peer = by["timm->openvino+int8"]
    assert peer.precision == "int8" and "nncf.quantize with its defaults" in peer.setup["model"]
    assert peer.setup["PERFORMANCE_HINT"].startswith("default")
    for candidate in candidates:
        assert candidate.fn().shape == (2, 1000)


def test_our_openvino_backend_candidates_record_their_setup_and_precision(tmp_path):
    """deploy(compile='openvino') and quantize(engine='openvino') as candidates: static batch, LATENCY,
    the precision asked for and the one the plugin ran, as the engines' rows say theirs."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from splitattn.bench.candidates import inference_candidates
    from splitattn.deploy.cpu_features import native_bfloat16

    config = BenchConfig(ENGINE_MODEL, batch_size=2, img_size=32)
    variants = ("deploy+openvino", "deploy+openvino+bf16", "int8+openvino")
    by = {c.label: c for c in inference_candidates(config, variants, references=False, workdir=tmp_path)}
    fp32, bf16, int8 = (by[f"ours {variant}"] for variant in variants)
    assert fp32.precision == "float32" and fp32.setup["INFERENCE_PRECISION_HINT"] == "f32"
    assert fp32.setup["input"] == "static [2, 3, 32, 32]" and fp32.setup["PERFORMANCE_HINT"] == "LATENCY"
    assert bf16.precision == ("bfloat16" if native_bfloat16() else "float32")  # what it ran, not what it asked
    assert int8.precision == "int8" and "engine='openvino'" in int8.setup["model"]
    for candidate in by.values():
        assert candidate.fn().shape == (2, 1000)


def test_bfloat16_deploy_candidates_eager_and_compiled_compute_in_bf16_and_agree():
    """deploy+bf16 and deploy+compile+bf16: the same bfloat16 deploy, eager and compiled by inductor
    (one static graph, checked), each recording bf16 as its precision, so the bf16 target takes the
    faster of the two; their logits agree within deploy's bf16 tolerance."""
    from splitattn.bench.candidates import ONE_GRAPH, inference_candidates
    from splitattn.deploy import DEPLOY_TOLERANCES

    config = BenchConfig(ENGINE_MODEL, batch_size=2, img_size=32)
    by = {c.label: c for c in inference_candidates(config, ("deploy+bf16", "deploy+compile+bf16"), references=False)}
    eager, compiled = by["ours deploy+bf16"], by["ours deploy+compile+bf16"]
    assert eager.precision == compiled.precision == "bfloat16"
    assert "dtype=torch.bfloat16" in compiled.setup["model"] and "compile='inductor'" in compiled.setup["model"]
    assert compiled.setup["graphs"] == ONE_GRAPH and "graphs" not in eager.setup
    first, second = eager.fn().float(), compiled.fn().float()
    assert first.shape == second.shape == (2, 1000)
    assert (first - second).abs().max() <= 2 * DEPLOY_TOLERANCES[torch.bfloat16] * first.abs().max()


def test_our_onnxruntime_backend_candidate_records_its_setup(tmp_path):
    """deploy(compile='onnxruntime') as a candidate: exported at the static batch, the session set up
    as the onnxruntime peer's (all optimizations, the thread count, no spinning), float32."""
    pytest.importorskip("onnxruntime")
    from splitattn.bench.candidates import inference_candidates

    config = BenchConfig(ENGINE_MODEL, batch_size=2, img_size=32)
    [ours] = inference_candidates(config, ("deploy+onnxruntime",), references=False, workdir=tmp_path)
    assert ours.label == "ours deploy+onnxruntime" and ours.precision == "float32"
    assert ours.setup["input"] == "static [2, 3, 32, 32] (exported at that shape)"
    assert ours.setup["intra_op_num_threads"] == torch.get_num_threads()
    assert ours.setup["graph_optimization_level"] == "ORT_ENABLE_ALL" and ours.fn().shape == (2, 1000)


def test_int8_aot_candidate_runs_without_compiling_here_and_when_loaded_in_a_fresh_process(tmp_path):
    """The int8 model as save_quantized(aot=True) writes it (whose agreement with the float model
    test_quantize checks), the one package the benchmark both times and loads: int8, at a static
    shape, nothing compiled when it is called; saved, a new process loads it and runs its first batch
    without compiling either, and that process's own times fit inside the time its parent saw to
    its first output (the load-time row's measurement)."""
    pytest.importorskip("torchao")
    from splitattn.bench.candidates import inference_candidates
    from splitattn.bench.load_time import time_first_output
    from splitattn.deploy import save_package
    from splitattn.deploy.graph_count import counting_graphs

    config = BenchConfig(ENGINE_MODEL, batch_size=2, img_size=32)
    [candidate] = inference_candidates(config, ("int8+aot",), references=False)
    assert candidate.label == "ours int8+aot" and candidate.precision == "int8"
    assert "compiled ahead of time (save_quantized aot=True) at static [2, 3, 32, 32]" in candidate.setup["model"]
    with counting_graphs() as graphs:
        out = candidate.fn()
    assert graphs.count == 0 and out.shape == (2, 1000) and torch.isfinite(out).all()
    path = save_package(candidate.model, tmp_path / f"{ENGINE_MODEL}-int8-b2-32px.pt2")
    measured = time_first_output(path, (2, 3, 32, 32), threads=1)
    assert measured["graphs"] == 0 and measured["output_shape"] == [2, 1000]
    assert 0 < measured["import_s"] + measured["load_and_first_batch_s"] <= measured["process_to_first_output_s"]


def test_load_time_of_an_openvino_int8_model_in_a_fresh_process(tmp_path):
    """A load-time row: the OpenVINO int8 IR loads (OpenVINO compiles it) and runs its first batch in a
    new process, with no dynamo graph, inside the time the parent saw; its size counts the weights
    file beside the .xml."""
    pytest.importorskip("nncf")
    from splitattn.bench.load_time import load_times

    [row] = load_times(BenchConfig(ENGINE_MODEL, batch_size=1, img_size=32), ("int8-openvino",), tmp_path, threads=1)
    assert row.graphs_compiled_at_load == 0 and "OpenVINO IR" in row.package and row.build_s > 0
    assert 0 < row.import_s + row.load_and_first_batch_s <= row.process_to_first_output_s
    weights = tmp_path / f"{ENGINE_MODEL}-int8-openvino-b1-32px.bin"
    assert weights.is_file() and row.package_mb * 2**20 > weights.stat().st_size


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

"""The benchmark suite behind the speed tables of docs/benchmarks.md: ``python benchmarks/run.py``.

Runs, in one process, every configuration the performance issue sets a target for (ResNeSt-50,
SE-ResNet-50 and SK-ResNeXt-50 inference at batch 1 and 16; their training steps at batch 16),
plus the scaling tables, and writes RESULTS.json and RESULTS.md (``runs/bench/results-<time>`` unless
``--out`` names another prefix; ``--out benchmarks/results`` replaces the committed results the
docs/benchmarks.md's tables come from).
Candidates are interleaved (A B A B ...) so ratios survive a noisy machine; absolute numbers do not
and are only context. ``--quick`` shrinks everything to a smoke run.

Sections (``--skip`` leaves some out, ``--only`` runs just those): ``inference`` (ours, timm, the
engines on our exported files and timm's model exported plainly), ``training``, ``precision`` (the
digits model's accuracy in each precision), ``scaling``, and ``load`` (a saved int8 and a float32
AOT package of ResNeSt-50, each loaded in a fresh process: seconds to its first batch). For example
``python benchmarks/run.py --only load`` measures the load times alone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from summary import summary  # benchmarks/summary.py: the condensed tables of docs/benchmarks.md

from splitattn.bench import BenchConfig, environment, markdown_table, roof_rate, roof_text, run_config
from splitattn.bench.cpu_info import cpu_line

INFERENCE_MODELS = ("resnest50", "seresnet50", "skresnext50_32x4d")
TRAINING_MODELS = ("resnest50d", "seresnet50", "skresnext50_32x4d")
SCALING_RESOLUTIONS = (160, 224, 320, 416)
SCALING_DEPTHS = ("resnest14d", "resnest26d", "resnest50d", "resnest101e", "resnest200e", "resnest269e")
SECTIONS = ("inference", "training", "scaling", "precision", "load")
LOAD_MODEL = "resnest50"  # the load-time target's model
ENGINES = ("onnx", "onnx+int8", "openvino", "openvino again", "openvino+bf16", "openvino+int8", "timm->onnx",
           "timm->openvino", "timm->openvino+int8")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat: checks the suite runs")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per inference configuration")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed rounds per training configuration")
    parser.add_argument("--compile", action="store_true", help="add torch.compile (inductor) candidates; slow")
    parser.add_argument("--aot", action="store_true",
                        help="add AOTInductor candidates (deploy compile='aot', int8 as save_quantized aot=True "
                             "writes it); minutes of compiling each")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads for torch and onnxruntime (default: torch's, one per core)")
    sections = parser.add_mutually_exclusive_group()
    sections.add_argument("--skip", nargs="*", default=[], choices=SECTIONS, help="sections to leave out")
    sections.add_argument("--only", nargs="+", default=None, choices=SECTIONS, help="the sections to run, alone")
    parser.add_argument("--accuracy", metavar="CHECKPOINT", default="runs/train/best.pth",
                        help="a digits model of `splitattn train` to evaluate in float32, bfloat16 and int8 "
                             "(default: runs/train/best.pth, the quick start's; the section is left out if missing)")
    parser.add_argument("--engines", nargs="*", default=list(ENGINES),
                        help="engine peers of the inference table (default: onnxruntime and OpenVINO on our "
                             "exported files, float32, bf16 and int8, OpenVINO float32 set up twice as the run's "
                             "noise control, and timm's model exported plainly to each); "
                             "those whose package is missing are left out with a note")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the sections run in the --out results file, keeping its other sections "
                             "and its environment (the rerun sections and their seconds are recorded)")
    parser.add_argument("--out", default=None,
                        help="output prefix, .json and .md are added (default: runs/bench/results-<time>; "
                             "benchmarks/results replaces the committed results)")
    return parser.parse_args()


# Our backends on other engines: the packages each needs, the extra that installs them, and the
# variants that run on it.
BACKENDS = {"OpenVINO": (("openvino", "nncf"), "openvino",
                         ("deploy+openvino", "deploy+openvino+bf16", "int8+openvino")),
            "onnxruntime": (("onnxruntime", "onnx"), "export", ("deploy+onnxruntime",))}


def ours_on(backend: str) -> tuple[str, ...]:
    """Our ``backend``'s variants (deploy compile='openvino' or 'onnxruntime', quantize engine='openvino')
    where its packages are installed; a note where not."""
    import importlib.util

    packages, extra, variants = BACKENDS[backend]
    missing = [package for package in packages if importlib.util.find_spec(package) is None]
    if missing:
        print(f"left out our {backend} backend: no {', '.join(missing)} (pip install 'splitattn[{extra}]')",
              flush=True)
        return ()
    return variants


def available_engines(engines: list[str]) -> list[str]:
    """The requested engine peers whose packages are installed (the others are named and left out)."""
    import importlib.util

    needs = {"onnx": ("onnxruntime",), "openvino": ("openvino",)}
    kept = []
    for engine in engines:
        base, _, precision = engine.removeprefix("timm->").removesuffix(" again").partition("+")
        packages = (*needs[base], *(("nncf",) if base == "openvino" and precision == "int8" else ()),
                    *(("timm",) if engine.startswith("timm->") else ()))
        missing = [package for package in packages if importlib.util.find_spec(package) is None]
        if missing:
            print(f"left out {engine}: no {', '.join(missing)} (pip install 'splitattn[export,openvino]' timm)",
                  flush=True)
        else:
            kept.append(engine)
    return kept


def precision_rows(checkpoint: Path, quick: bool) -> list[dict]:
    """The digits model in float32, bfloat16 and int8 on the digits validation images (top-1 and
    agreement with float32), calibrated on training images; [] when the checkpoint is missing."""
    if not checkpoint.is_file():
        print(f"left out the precision table: no {checkpoint} (train one with `splitattn train`)", flush=True)
        return []
    from torch.utils.data import DataLoader

    from splitattn.data import ImageFolderDataset, collate_skipping
    from splitattn.data.calibration import calibration_batches
    from splitattn.data.digits import default_root
    from splitattn.training.agreement import compare_precisions, precision_variants
    from splitattn.training.inference import load_trained

    trained = load_trained(checkpoint)
    model, root = trained.model, default_root()
    transform = trained.transform
    loader = DataLoader(ImageFolderDataset(root / "val", transform, class_names=trained.class_names), 64,
                        collate_fn=collate_skipping)
    calibration = calibration_batches(root / "train", model, count=64 if quick else 256, batch_size=32)
    engines = ("inductor", "openvino") if ours_on("OpenVINO") else ("inductor",)
    models = precision_variants(model, calibration, keep_float=("attention", "none"), engines=engines)
    return [{"model": trained.model_name, "checkpoint": str(checkpoint), "precision": r.label, "top1": r.top1,
             "agreement": r.agreement, "images": r.images} for r in compare_precisions(models, loader)]


def merged(path: Path, env: dict, rows: dict[str, list], run: set[str]) -> tuple[dict, dict[str, list]]:
    """The results in ``path`` with the sections in ``run`` replaced by ``rows``'; its environment kept
    (roof and CPU of the run that made it), with the rerun sections and their seconds added."""
    if not path.is_file():
        raise SystemExit(f"--merge: no results file {path} to merge into")
    old = json.loads(path.read_text())
    if old["environment"].get("cpu") != env.get("cpu"):
        raise SystemExit(f"--merge: {path} was measured on another CPU ({cpu_line(old['environment'].get('cpu'))})")
    kept = {key: old.get(key, []) for key in SECTIONS}
    reruns = {**old["environment"].get("reruns", {}), **{name: env["seconds"] for name in sorted(run)}}
    return {**old["environment"], "reruns": reruns}, {**kept, **{key: rows[key] for key in run}}


def load_rows(quick: bool) -> list[dict]:
    """The load-time target: an int8 and a float32 AOT package of ResNeSt-50 (batch 1, 224 px; with
    ``quick`` resnest14d at 64 px), each built here and loaded in a fresh process."""
    import tempfile

    from splitattn.bench.load_time import PACKAGES, load_times

    config = BenchConfig("resnest14d" if quick else LOAD_MODEL, 1, 64 if quick else 224)
    with tempfile.TemporaryDirectory(prefix="splitattn-load-") as folder:
        rows = [row.as_dict() for row in load_times(config, tuple(PACKAGES), Path(folder))]
    for row in rows:
        print(f"{row['package']}: {row['process_to_first_output_s']:.1f} s from process start to first output, "
              f"{row['load_and_first_batch_s']:.2f} s load + first batch", flush=True)
    return rows


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    size = 64 if args.quick else 224
    repeats, train_repeats = (1, 1) if args.quick else (args.repeats, args.train_repeats)
    run_sections = set(args.only or SECTIONS) - set(args.skip)
    timed = run_sections & {"inference", "training", "scaling"}
    roof, probes = roof_rate(torch.device("cpu"), repeats=10) if timed else (None, {})
    variants = ("eager", "deploy", "deploy+jit", *(("deploy+compile",) if args.compile else ()),
                *(("deploy+aot",) if args.aot else ()), "deploy+bf16",
                *(("deploy+compile+bf16",) if args.compile else ()), *(("deploy+aot+bf16",) if args.aot else ()),
                "int8", *(("int8+aot",) if args.aot else ()),
                *(variant for backend in BACKENDS for variant in ours_on(backend)),
                *available_engines(args.engines))
    sections: dict[str, list] = {name: [] for name in SECTIONS}
    start = time.perf_counter()
    if "inference" in run_sections:
        for name in INFERENCE_MODELS:
            for batch in (1, 16):
                config = BenchConfig(name, 2 if args.quick else batch, size)
                sections["inference"] += run_config(config, "inference", variants, warmup=1, repeats=repeats,
                                                    roof_flops=roof)
                print(markdown_table(sections["inference"][-len(variants) - 3:]), flush=True)
    if "training" in run_sections:
        train_variants = ("train", "train+channels_last", "train+ckpt_stage", "train+ckpt_block")
        for name in TRAINING_MODELS:
            config = BenchConfig(name, 2 if args.quick else 16, size)
            sections["training"] += run_config(config, "training", train_variants, warmup=1,
                                               repeats=train_repeats, roof_flops=roof)
            print(markdown_table(sections["training"][-len(train_variants) - 3:]), flush=True)
    if "precision" in run_sections:
        sections["precision"] = precision_rows(Path(args.accuracy), quick=args.quick)
    if "scaling" in run_sections:
        grid = [("resnest50d", r) for r in SCALING_RESOLUTIONS] + [(d, 224) for d in SCALING_DEPTHS]
        for name, resolution in grid[:2] if args.quick else grid:
            config = BenchConfig(name, 1, 64 if args.quick else resolution)
            sections["scaling"] += run_config(config, "inference", ("deploy",), warmup=1, repeats=max(1, repeats // 2),
                                              references=False, memory=False, roof_flops=roof)
    if "load" in run_sections:
        sections["load"] = load_rows(args.quick)
    env = environment(roof, probes) | {"seconds": round(time.perf_counter() - start), "quick": args.quick}
    out = Path(args.out or f"runs/bench/results-{time.strftime('%Y%m%d-%H%M%S')}")
    out.parent.mkdir(parents=True, exist_ok=True)
    json_rows = {key: [row if isinstance(row, dict) else row.as_dict() for row in rows]
                 for key, rows in sections.items()}
    if args.merge:
        env, json_rows = merged(out.with_suffix(".json"), env, json_rows, run_sections)
    out.with_suffix(".json").write_text(json.dumps({"environment": env, **json_rows}, indent=2) + "\n")
    roof_part = f"fp32 roof {roof_text(env)}, " if roof else ""
    lines = [f"torch {env['torch']}, {env['threads']} threads, {cpu_line(env['cpu'])}, {roof_part}{env['seconds']} s",
             "", summary({"environment": env, **json_rows}), "", "## All rows"]
    for key, rows in sections.items():
        if rows and key not in ("precision", "load"):
            lines += ["", f"### {key}", "", markdown_table(rows)]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

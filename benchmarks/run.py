"""The benchmark suite behind the speed tables of docs/benchmarks.md: ``python benchmarks/run.py``.

Runs, in one process, every configuration the performance issue sets a target for (ResNeSt-50,
SE-ResNet-50 and SK-ResNeXt-50 inference at batch 1 and 16; their training steps at batch 16),
plus the scaling tables, and writes RESULTS.json and RESULTS.md (``runs/bench/results-<time>`` unless
``--out`` names another prefix; ``--out benchmarks/results`` replaces the committed results the
docs/benchmarks.md's tables come from).
Candidates are interleaved (A B A B ...) so ratios survive a noisy machine; absolute numbers do not
and are only context. ``--quick`` shrinks everything to a smoke run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from summary import summary  # benchmarks/summary.py: the condensed tables of docs/benchmarks.md

from splitattn.bench import BenchConfig, environment, markdown_table, roof_rate, roof_text, run_config

INFERENCE_MODELS = ("resnest50", "seresnet50", "skresnext50_32x4d")
TRAINING_MODELS = ("resnest50d", "seresnet50", "skresnext50_32x4d")
SCALING_RESOLUTIONS = (160, 224, 320, 416)
SCALING_DEPTHS = ("resnest14d", "resnest26d", "resnest50d", "resnest101e", "resnest200e", "resnest269e")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat: checks the suite runs")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per inference configuration")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed rounds per training configuration")
    parser.add_argument("--compile", action="store_true", help="add torch.compile (inductor) candidates; slow")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads for torch and onnxruntime (default: torch's, one per core)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("inference", "training", "scaling", "precision"))
    parser.add_argument("--accuracy", metavar="CHECKPOINT", default="runs/train/best.pth",
                        help="a digits model of `splitattn train` to evaluate in float32, bfloat16 and int8 "
                             "(default: runs/train/best.pth, the quick start's; the section is left out if missing)")
    parser.add_argument("--engines", nargs="*", default=["onnx", "onnx+int8", "openvino", "openvino+int8"],
                        help="engine peers of the inference table (default: onnxruntime and OpenVINO, float32 "
                             "and int8); those whose package is missing are left out with a note")
    parser.add_argument("--out", default=None,
                        help="output prefix, .json and .md are added (default: runs/bench/results-<time>; "
                             "benchmarks/results replaces the committed results)")
    return parser.parse_args()


def available_engines(engines: list[str]) -> list[str]:
    """The requested engine peers whose packages are installed (the others are named and left out)."""
    import importlib.util

    needs = {"onnx": "onnxruntime", "openvino": "openvino"}
    kept = []
    for engine in engines:
        package = needs[engine.partition("+")[0]]
        if importlib.util.find_spec(package) is None or (engine == "openvino+int8" and
                                                         importlib.util.find_spec("nncf") is None):
            print(f"left out {engine}: pip install 'splitattn[export,openvino]'", flush=True)
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
    models = precision_variants(model, calibration, keep_float=("attention", "none"))
    return [{"model": trained.model_name, "checkpoint": str(checkpoint), "precision": r.label, "top1": r.top1,
             "agreement": r.agreement, "images": r.images} for r in compare_precisions(models, loader)]


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    size = 64 if args.quick else 224
    repeats, train_repeats = (1, 1) if args.quick else (args.repeats, args.train_repeats)
    roof, probes = roof_rate(torch.device("cpu"), repeats=10)
    variants = ("eager", "deploy", "deploy+jit", *(("deploy+compile",) if args.compile else ()), "deploy+bf16", "int8",
                *available_engines(args.engines))
    sections: dict[str, list] = {"inference": [], "training": [], "scaling": [], "precision": []}
    start = time.perf_counter()
    if "inference" not in args.skip:
        for name in INFERENCE_MODELS:
            for batch in (1, 16):
                config = BenchConfig(name, 2 if args.quick else batch, size)
                sections["inference"] += run_config(config, "inference", variants, warmup=1, repeats=repeats,
                                                    roof_flops=roof)
                print(markdown_table(sections["inference"][-len(variants) - 3:]), flush=True)
    if "training" not in args.skip:
        train_variants = ("train", "train+channels_last", "train+ckpt_stage", "train+ckpt_block")
        for name in TRAINING_MODELS:
            config = BenchConfig(name, 2 if args.quick else 16, size)
            sections["training"] += run_config(config, "training", train_variants, warmup=1,
                                               repeats=train_repeats, roof_flops=roof)
            print(markdown_table(sections["training"][-len(train_variants) - 3:]), flush=True)
    if "precision" not in args.skip:
        sections["precision"] = precision_rows(Path(args.accuracy), quick=args.quick)
    if "scaling" not in args.skip:
        grid = [("resnest50d", r) for r in SCALING_RESOLUTIONS] + [(d, 224) for d in SCALING_DEPTHS]
        for name, resolution in grid[:2] if args.quick else grid:
            config = BenchConfig(name, 1, 64 if args.quick else resolution)
            sections["scaling"] += run_config(config, "inference", ("deploy",), warmup=1, repeats=max(1, repeats // 2),
                                              references=False, memory=False, roof_flops=roof)
    env = environment(roof, probes) | {"seconds": round(time.perf_counter() - start), "quick": args.quick}
    out = Path(args.out or f"runs/bench/results-{time.strftime('%Y%m%d-%H%M%S')}")
    out.parent.mkdir(parents=True, exist_ok=True)
    json_rows = {key: [row if isinstance(row, dict) else row.as_dict() for row in rows]
                 for key, rows in sections.items()}
    out.with_suffix(".json").write_text(json.dumps({"environment": env, **json_rows}, indent=2) + "\n")
    lines = [f"torch {env['torch']}, {env['threads']} threads, {env['processor'] or env['machine']}, "
             f"fp32 roof {roof_text(env)}, {env['seconds']} s", "", summary({"environment": env, **json_rows}), "",
             "## All rows"]
    for key, rows in sections.items():
        if rows and key != "precision":
            lines += ["", f"### {key}", "", markdown_table(rows)]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

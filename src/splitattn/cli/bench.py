"""Benchmark zoo models against timm and the official ResNeSt package (when installed).

Every candidate (ours eager, ours in deploy mode, compiled, ONNX; timm; official) runs in turns
in this one process, so machine noise hits them alike; the table reports ratios against timm.
"""

from __future__ import annotations

import argparse

import torch

from ..bench import (
    DTYPES,
    MODES,
    TRAINING_VARIANTS,
    BenchConfig,
    environment,
    inference_variants,
    markdown_table,
    roof_rate,
    roof_text,
    run_config,
    write_json,
)
from ..errors import SplitattnError
from ..models import get_model_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", help="zoo names, e.g. resnest50 seresnet50")
    parser.add_argument("--batch-size", "-b", type=int, nargs="+", default=[1], help="one or more batch sizes")
    parser.add_argument("--img-size", type=int, nargs="+", default=[224], help="one or more square resolutions")
    parser.add_argument("--mode", choices=MODES, nargs="+", default=["inference"],
                        help="inference, training (a forward, backward and SGD step), or both")
    parser.add_argument("--variants", nargs="+", default=None,
                        help=f"inference: {', '.join(inference_variants())} (default eager deploy); "
                             f"training: {', '.join(TRAINING_VARIANTS)} (default train)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="data type of weights and inputs")
    parser.add_argument("--channels-last", action="store_true", help="run eager candidates and inputs in NHWC")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (each candidate once per round)")
    parser.add_argument("--no-references", action="store_true", help="time our candidates only")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--json", default=None, help="also write the rows and the environment to this file")


def _split_variants(variants: list[str] | None, mode: str) -> tuple[str, ...] | None:
    if variants is None:
        return None
    inference = inference_variants()
    known = inference if mode == "inference" else TRAINING_VARIANTS
    chosen = tuple(v for v in variants if v in known)
    unknown = [v for v in variants if v not in inference + TRAINING_VARIANTS]
    if unknown:
        raise SplitattnError(f"unknown variants {unknown}; expected {inference} or {TRAINING_VARIANTS}")
    return chosen or None


def run(args: argparse.Namespace) -> int:
    for name in args.models:
        get_model_entry(name)  # unknown names fail before any timing starts
    if args.threads is not None:
        if args.threads < 1:
            raise SplitattnError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    roof, probes = roof_rate(device, DTYPES[args.dtype])
    rows = []
    for name in args.models:
        for mode in args.mode:
            for batch in args.batch_size:
                for size in args.img_size:
                    config = BenchConfig(name, batch, size, args.dtype, args.channels_last, args.device)
                    rows += run_config(config, mode, _split_variants(args.variants, mode), args.warmup,
                                       args.repeats, not args.no_references, not args.no_memory, roof)
    env = environment(roof, probes)
    print(f"torch {env['torch']}, {env['threads']} threads, {env['cuda'] or env['processor'] or env['machine']}, "
          f"roof {roof_text(env)} ({args.dtype}); peak memory counts tensor bytes")
    print(markdown_table(rows))
    if args.json:
        print(f"wrote {write_json(rows, args.json, env)}")
    return 0

"""Which form of the attention MLPs OpenVINO runs faster: matrix products or the 1 x 1 convs.

Where ``OPENVINO_ATTENTION_MLP`` (``splitattn.deploy.openvino_model``) comes from. One model at one
batch size, int8 through NNCF with the attention MLPs in float (``quantize(engine="openvino")``'s
default), once per form of ``deploy(attention_mlp=...)``; the forms are timed in turns by the
benchmark's own timer (``interleaved_times``: one call per form per round, each settled first), so
what drifts across the run (the VM's load) falls on all alike. Prints each form's images/s, its
ratio to the first form and in how many of the paired rounds it was faster.

    python benchmarks/attention_mlp_form.py seresnet50 --batch 1 --rounds 12
"""

from __future__ import annotations

import argparse
import copy
import statistics
from collections.abc import Sequence

import torch

import splitattn
from splitattn.bench.timing import interleaved_times
from splitattn.deploy import ATTENTION_MLP_FORMS, deploy
from splitattn.deploy.openvino_model import quantize_openvino
from splitattn.quantize import attention_mlp_names


def compare_forms(name: str, batch: int, rounds: int, forms: Sequence[str],
                  img_size: int = 224) -> dict[str, list[float]]:
    """Seconds per forward pass of each form, one entry per round.

    Args:
        name: a zoo model (random weights: the speed does not depend on them).
        batch: the batch size compiled and timed.
        rounds: timed rounds per form.
        forms: keys of ``ATTENTION_MLP_FORMS``; the first is the baseline.
        img_size: the input's height and width.
    """
    torch.manual_seed(0)
    model = splitattn.create_model(name).eval()
    calibration = [torch.randn(4, 3, img_size, img_size) for _ in range(4)]
    x = torch.randn(batch, 3, img_size, img_size)
    built = {form: quantize_openvino(deploy(copy.deepcopy(model), fuse="none", memory_format="contiguous",
                                            attention_mlp=form), calibration, batch, attention_mlp_names(model))
             for form in forms}
    with torch.no_grad():
        return interleaved_times({form: (lambda int8=int8: int8(x)) for form, int8 in built.items()},
                                 torch.device("cpu"), warmup=1, repeats=rounds)


def report(name: str, batch: int, times: dict[str, list[float]]) -> str:
    """One line per form: images/s, ratio to the first form, rounds in which it was faster."""
    forms = list(times)
    base = times[forms[0]]
    lines = []
    for form in forms:
        wins = sum(mine < theirs for mine, theirs in zip(times[form], base, strict=True))
        ratio = statistics.median(base) / statistics.median(times[form])
        lines.append(f"{name} batch {batch} {form:20s} {batch / statistics.median(times[form]):7.1f} images/s "
                     f"{ratio:.3f}x of {forms[0]}, faster in {wins} of {len(base)} rounds")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--forms", nargs="+", default=["matmul", "conv"], choices=list(ATTENTION_MLP_FORMS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    times = compare_forms(args.model, args.batch, args.rounds, args.forms, args.img_size)
    print(report(args.model, args.batch, times))


if __name__ == "__main__":
    main()

"""Accuracy of reduced-precision copies of one model, on real labelled images.

Reduced precision is judged the way a user ships it: the top-1 of each copy (float32, bfloat16,
int8 ...) on the same images, and how often each copy's top-1 class agrees with float32's, which
is stricter than equal accuracy (two copies can be right equally often on different images).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..deploy import deploy
from ..errors import SplitattnError
from ..quantize import quantize


@dataclass(frozen=True)
class PrecisionResult:
    label: str
    top1: float  # % of the images
    agreement: float  # % of the images on which its top-1 class is the reference's
    images: int

    def line(self, reference: str) -> str:
        """One aligned line of a report; ``reference`` names the model the agreement is with."""
        return f"{self.label:<10} top-1 {self.top1:6.2f}%  agrees with {reference} on {self.agreement:6.2f}%"


def compare_precisions(models: Mapping[str, nn.Module], batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
                       ) -> list[PrecisionResult]:
    """Top-1 of each model over ``batches`` of (images, labels), and its agreement with the first model's top-1.

    ``batches`` is read once; every model sees each batch (float32 images) in turn.
    """
    if not models:
        raise SplitattnError("compare_precisions needs at least one model (the first is the reference)")
    labels_seen = 0
    correct = {label: 0 for label in models}
    agree = {label: 0 for label in models}
    with torch.no_grad():
        for batch in batches:
            images, labels = batch[0], batch[1]
            if len(labels) == 0:
                continue
            predictions = {label: model(images).argmax(1) for label, model in models.items()}
            reference = next(iter(predictions.values()))
            for label, predicted in predictions.items():
                correct[label] += int((predicted == labels).sum())
                agree[label] += int((predicted == reference).sum())
            labels_seen += len(labels)
    if labels_seen == 0:
        raise SplitattnError("no labelled images to compare the models on")
    return [PrecisionResult(label, 100.0 * correct[label] / labels_seen, 100.0 * agree[label] / labels_seen,
                            labels_seen) for label in models]


def precision_variants(model: nn.Module, calibration: Sequence[torch.Tensor], compile: bool = True,
                       keep_float: Sequence[str] = ("attention",),
                       engines: Sequence[str] = ("inductor",)) -> dict[str, nn.Module]:
    """``model`` deployed in float32 (first: the reference) and bfloat16, and quantized to int8.

    Args:
        model: the float32 model.
        calibration: the int8 calibration batches.
        compile: run the inductor engine's int8 compiled (False: its reference graph).
        keep_float: one int8 model per choice, by the first engine: labelled ``int8`` for the first
            choice, ``int8 (keep_float=...)`` for the others; none when empty.
        engines: the quantize engines (:data:`splitattn.quantize.QUANTIZE_ENGINES`); each after the
            first adds ``int8 (ENGINE)``, with the first ``keep_float`` choice.
    """
    variants = {"float32": deploy(model), "bfloat16": deploy(model, dtype=torch.bfloat16)}
    if not keep_float:
        return variants
    first, *others = engines
    for i, choice in enumerate(keep_float):
        variants["int8" if i == 0 else f"int8 (keep_float={choice})"] = quantize(
            model, calibration, keep_float=choice, compile=compile, engine=first)
    for engine in others:
        variants[f"int8 ({engine})"] = quantize(model, calibration, keep_float=keep_float[0], engine=engine)
    return variants

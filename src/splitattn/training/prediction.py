"""Top-k classes of many images, batch by batch, in deploy mode checked against eval mode.

The model is deployed on the first batch that holds a readable image: that batch is both the
shape the convs are packed for (and the batch size deploy picks the memory format for: NCHW for
one image on CPU, channels-last for batches) and the example ``deploy`` checks its output against
(BNs folded, within 1e-4 of the eval-mode model), so a deployment that would change the answers
fails before any prediction is written. In inference every image is computed on its own (no batch statistics),
so an image gets the same probabilities in a batch as alone, up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data import KeyedBatch
from ..deploy import AotModel, FixedBatch, deploy
from ..errors import SplitattnError
from ..quantize import QuantizedModel


@dataclass(frozen=True)
class ClassScore:
    """One of an image's top classes."""

    name: str
    index: int
    probability: float

    def as_dict(self) -> dict[str, Any]:
        return {"class": self.name, "index": self.index, "probability": self.probability}


@dataclass(frozen=True)
class ImagePrediction:
    """An image's top classes, best first; none, and the reason, when the image could not be read."""

    image: str
    top: tuple[ClassScore, ...] = field(default_factory=tuple)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form ``splitattn predict --json`` prints (``error`` only for an unreadable image)."""
        record: dict[str, Any] = {"image": self.image, "predictions": [score.as_dict() for score in self.top]}
        if self.error is not None:
            record["error"] = self.error
        return record


def _inference_model(model: nn.Module, example: torch.Tensor, batch_size: int) -> nn.Module:
    """``model`` ready for batches like ``example``: deploy mode, checked on ``example``.

    An int8 model of ``splitattn quantize`` is already an inference graph; compiled, it is run at
    one batch size (``FixedBatch``) so that the last, smaller batch does not compile a second time.
    """
    if isinstance(model, QuantizedModel):
        return FixedBatch(model, batch_size) if model.compiled else model
    if isinstance(model, AotModel):  # compiled ahead of time: pads or splits to the batch it was compiled for
        return model
    return deploy(model.eval(), batch_size=batch_size, example_input=example, inplace=True)


def predict_images(
    model: nn.Module,
    batches: Iterable[KeyedBatch],
    class_names: Sequence[str],
    top_k: int,
    device: torch.device,
) -> Iterator[ImagePrediction]:
    """One :class:`ImagePrediction` per image of ``batches``, in their order, unreadable ones included.

    Args:
        model: the classifier in eval mode (it is deployed in place on the first readable batch).
        batches: :class:`~splitattn.data.KeyedBatch` es, e.g. a DataLoader over
            :class:`~splitattn.data.ImageFiles` with ``collate_fn=collate_keyed``; an image is
            named by its key, an unreadable one with its skipped record's reason.
        class_names: the name of each output index.
        top_k: how many classes to list per image (at most ``len(class_names)``).
        device: where to run the model.

    Raises:
        ValueError: ``top_k`` outside 1..number of classes, or deploy mode disagreeing with eval mode.
    """
    if not 1 <= top_k <= len(class_names):
        raise SplitattnError(f"top_k must be between 1 and the number of classes ({len(class_names)}), got {top_k}")
    model = model.to(device)
    deployed: nn.Module | None = None
    for batch in batches:
        scores: list[tuple[ClassScore, ...]] = []
        if len(batch.images):
            images = batch.images.to(device)
            if deployed is None:  # packed and checked for the first batch's size (the loader's, mostly)
                deployed = _inference_model(model, images, len(batch.read))
            with torch.no_grad():
                top = deployed(images).float().softmax(dim=1).topk(top_k, dim=1)
            scores = [tuple(ClassScore(class_names[i], i, p) for p, i in zip(values, indices, strict=True))
                      for values, indices in zip(top.values.tolist(), top.indices.tolist(), strict=True)]
        readable, skipped = iter(zip(batch.keys, scores, strict=True)), iter(batch.skipped.samples)
        for read in batch.read:
            if read:
                yield ImagePrediction(*next(readable))
            else:
                record = next(skipped)
                yield ImagePrediction(record.key, error=record.reason)

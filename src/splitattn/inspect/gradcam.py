"""Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class comes from.

The last stage's feature maps are weighted by the spatially averaged gradient of the class score
with respect to them, summed over channels and rectified. One forward and one backward pass; the
hook only keeps a reference to the stage's output, the model is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SplitattnError


@dataclass
class GradCam:
    """A heat map in [0, 1] at the input's resolution ``(H, W)``, for class ``class_index``."""

    heatmap: torch.Tensor
    class_index: int
    probabilities: torch.Tensor


def default_target_layer(model: nn.Module) -> nn.Module:
    """The last stage of a splitattn ResNet: the deepest maps that still have a spatial layout."""
    stages = getattr(model, "stages", None)
    if not stages:
        raise SplitattnError("no target layer given and the model has no `stages`; pass target_layer=")
    return stages[-1]


def grad_cam(model: nn.Module, image: torch.Tensor, class_index: int | None = None,
             target_layer: nn.Module | None = None) -> GradCam:
    """Grad-CAM of ``image`` (``(1, C, H, W)``) for ``class_index`` (default: the top class)."""
    if image.ndim != 4 or image.shape[0] != 1:
        raise SplitattnError(f"grad_cam expects one image of shape (1, C, H, W), got {tuple(image.shape)}")
    if getattr(model, "num_classes", 1) == 0:
        raise SplitattnError("grad_cam needs a classifier; this model has num_classes=0")
    layer = target_layer if target_layer is not None else default_target_layer(model)
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _a, out: captured.append(out))
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            logits = model(image.detach().clone().requires_grad_(True))
            probabilities = logits.softmax(-1)[0].detach()
            index = int(probabilities.argmax()) if class_index is None else int(class_index)
            if not 0 <= index < logits.shape[-1]:
                raise SplitattnError(f"class_index must be in [0, {logits.shape[-1]}), got {index}")
            activation = captured[-1]
            (gradient,) = torch.autograd.grad(logits[0, index], activation)
    finally:
        handle.remove()
        model.train(was_training)
    weights = gradient.mean((2, 3), keepdim=True)
    cam = F.relu((weights * activation.detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    cam = cam / peak if peak > 0 else cam
    return GradCam(cam, index, probabilities)

"""One call that explains one image: attention-weight pictures per stage and a Grad-CAM heat map."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ..errors import SplitattnError
from .attention import AttentionRecord, attention_weights, by_stage
from .gradcam import grad_cam
from .images import open_image, prepare_image
from .plots import plot_stage_attention, save_heatmap


@dataclass
class Explanation:
    """What was written, the records behind the pictures, and the model's top classes.

    ``top5`` pairs class names (``pretrained_cfg["label_names"]``, else the index) with probabilities.
    """

    files: list[Path]
    records: list[AttentionRecord]
    class_index: int
    top5: list[tuple[str, float]] = field(default_factory=list)


def explain_image(model: nn.Module, image_path: str | os.PathLike, out_dir: str | os.PathLike) -> Explanation:
    """Write ``attention_layer{1..4}.png`` and ``gradcam.png`` for ``image_path`` into ``out_dir``.

    The image goes through the model's evaluation transform (``model.pretrained_cfg``); models
    without attention layers (plain ResNets) get the heat map only.
    """
    cfg = getattr(model, "pretrained_cfg", None)
    if cfg is None:
        raise SplitattnError("explain_image needs a splitattn model (it reads model.pretrained_cfg)")
    prepared = prepare_image(open_image(image_path), cfg, getattr(model, "in_chans", 3))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = attention_weights(model, prepared.tensor)
    files = [plot_stage_attention(stage_records, out / f"attention_layer{stage}.png", f"layer{stage}: ")
             for stage, stage_records in by_stage(records)]
    cam = grad_cam(model, prepared.tensor)
    files.append(save_heatmap(prepared.display, cam.heatmap, out / "gradcam.png"))
    top = cam.probabilities.topk(min(5, cam.probabilities.numel()))
    names = cfg.get("label_names") or [str(i) for i in range(cam.probabilities.numel())]
    top5 = [(names[int(i)], float(p)) for p, i in zip(top.values, top.indices, strict=True)]
    return Explanation(files, records, cam.class_index, top5)

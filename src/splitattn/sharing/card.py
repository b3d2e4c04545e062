"""The model card (``README.md``) of a shared model: what it is, how it was trained, what it reaches.

Written from facts only: the architecture and its counts, the training run's saved config and
metrics when there is a run, and the licence. What the card cannot know (what the data set
represents, known failure modes) it says plainly is the author's to add. Its ``library_name`` is
the library the Hub offers the repository to: ``timm`` for a repository in timm's format (timm,
transformers and splitattn all load it), ``splitattn`` for one only splitattn builds, with why.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..inspect import summarize_model
from ..models import get_model_entry
from ..models.registry import resolve_name
from ..weights.repo_config import RepoFormat, repo_format
from .run import CURVES, RunRecord

DEFAULT_LICENSE = "apache-2.0"
_ATTENTION = {
    "resnest": "split attention (ResNeSt): each block's 3x3 conv is split into radix groups that a "
               "global-context softmax weighs",
    "senet": "squeeze-and-excitation: each block's channels are scaled by a gate computed from global context",
    "sknet": "selective kernels: each block mixes a 3x3 and a dilated 3x3 branch with softmax attention",
    "resnet": "none (a plain ResNet baseline)",
}
_DIGITS = ("the digits set built into splitattn: scikit-learn's 1,797 handwritten 8x8 digits, written as "
           "32 px PNGs, split 80/20 per class")


def _recipe(config: dict[str, Any]) -> list[str]:
    """The settings a reader needs to reproduce the run, in words."""
    start = config.get("pretrained")
    lines = [
        f"- Started from: {'published ImageNet weights' if start == 'published' else start or 'random initialisation'}",
        f"- {config.get('epochs')} epochs, batch {config.get('batch_size')} per process, SGD with momentum "
        f"{config.get('momentum')}, learning rate {config.get('lr') or 'scaled as 0.1 x batch / 256'}, "
        f"{config.get('warmup_epochs')} warm-up epoch(s) then cosine decay",
        f"- Weight decay {config.get('weight_decay')}"
        + (" (not on norms and biases)" if config.get("no_decay_bn_bias") else "")
        + f", label smoothing {config.get('label_smoothing')}",
    ]
    augment = [name for name, on in (("mixup", config.get("mixup")), ("CutMix", config.get("cutmix")),
                                      ("AutoAugment", config.get("auto_augment")),
                                      ("RandAugment", config.get("rand_augment")),
                                      ("TrivialAugment", config.get("trivial_augment")),
                                      (f"random erasing (p={config.get('random_erasing')})",
                                       config.get("random_erasing")),
                                      ("random resized crops", config.get("random_resized_crop")),
                                      ("horizontal flips", config.get("hflip"))) if on]
    lines.append(f"- Augmentation: {', '.join(augment) if augment else 'pad-and-crop only'}")
    extras = [name for name, on in (("EMA of the weights", config.get("ema")), ("mixed precision", config.get("amp")),
                                    ("channels-last", config.get("channels_last"))) if on]
    if extras:
        lines.append(f"- Also: {', '.join(extras)}")
    lines.append(f"- Seed {config.get('seed')}; the full config is `splitattn.training_config` in config.json")
    return lines


def _results(run: RunRecord) -> list[str]:
    best, last = run.best, run.metrics[-1]
    rows = ["| epoch | val top-1 (%) | val top-5 (%) | val loss | train loss |", "|---:|---:|---:|---:|---:|"]
    for label, record in (("best", best), ("last", last)):
        rows.append(f"| {record['epoch']} ({label}) | {record['val_top1']:.2f} | {record['val_top5']:.2f} | "
                    f"{record['val_loss']:.4f} | {record['train_loss']:.4f} |")
    note = (f"The weights are those of epoch {best['epoch']}, the best on the validation set "
            f"({int(best.get('val_images', 0))} images).")
    return [*rows, "", note]


def started_from_license(run: RunRecord | None) -> str | None:
    """The licence of the published weights a run was fine-tuned from, if it started from them."""
    if run is None or run.config.get("pretrained") != "published":
        return None
    _, weights = resolve_name(run.config["model"])
    return weights.license if weights is not None else None


def _usage(name: str, repo: str, fmt: RepoFormat) -> list[str]:
    """How each library that can load the repository loads it."""
    ours = ["```python", "import splitattn", "",
            f'model = splitattn.create_model("hf-hub:{repo}").eval()',
            'model.pretrained_cfg["label_names"]   # the class names, in output order', "```",
            f"or, from the command line: `splitattn predict image.jpg --checkpoint hf-hub:{repo}`."]
    if fmt.timm_name is None:
        return [f"Only splitattn builds this network: {fmt.reason}. timm and transformers refuse the repository "
                "(its config.json is not a timm model's) rather than build another network.", "", *ours]
    return [f"The repository is in timm's format (timm's `{fmt.timm_name}`, the same network as splitattn's "
            f"`{name}`), so timm, transformers and splitattn all load it, with the same outputs.", "",
            "With timm:", "```python", "import timm", "",
            f'model = timm.create_model("hf-hub:{repo}", pretrained=True).eval()', "```",
            "With transformers:", "```python", "from transformers import pipeline", "",
            f'classify = pipeline("image-classification", model="{repo}")', "```",
            "With splitattn (its own model class, and the exact model it was built as):", *ours]


def model_card(model: nn.Module, repo_id: str | None = None, run: RunRecord | None = None,
               license: str | None = None, fmt: RepoFormat | None = None) -> str:
    """The README.md of a model repository holding ``model`` (a zoo model), optionally from a training run.

    Args:
        model: the model shared (built by ``splitattn.create_model``).
        repo_id: ``ORG/NAME``, for the title and the usage examples.
        run: its training run, for the recipe, the results and the curves.
        license: default: that of the published weights a run started from, else Apache-2.0.
        fmt: the repository's format (default :func:`~splitattn.weights.repo_config.repo_format`).
    """
    fmt = fmt or repo_format(model)
    cfg = model.pretrained_cfg
    name = cfg["architecture"]
    entry = get_model_entry(name)
    labels = cfg.get("label_names") or [str(i) for i in range(model.num_classes)]
    summary = summarize_model(name, (model.in_chans, *cfg["input_size"][1:]), num_classes=model.num_classes,
                              in_chans=model.in_chans)
    inherited = started_from_license(run)
    license = license or inherited or cfg.get("license") or DEFAULT_LICENSE
    data = None
    if run is not None:
        data = _DIGITS if run.config.get("data") == "digits" else f"the image folder `{run.config.get('data')}`"
    title = repo_id.split("/")[-1] if repo_id else f"{name} ({len(labels)} classes)"
    size = "x".join(str(s) for s in cfg["input_size"])
    lines = [
        "---",
        f"library_name: {fmt.library}",
        f"license: {license}",
        "pipeline_tag: image-classification",
        f"tags: [image-classification, {'timm, ' if fmt.timm_name else ''}splitattn, {entry.family}]",
        "---",
        f"# {title}",
        "",
        f"An image classifier over {len(labels)} classes: the `{name}` network of "
        "[splitattn](https://pypi.org/project/splitattn/)"
        + (f", trained on {data}." if data else "."),
        "",
        "## Model details",
        f"- Architecture: `{name}` ({entry.family}); attention: {_ATTENTION.get(entry.family, entry.family)}",
        f"- timm architecture: `{fmt.timm_name}`" if fmt.timm_name else f"- splitattn only: {fmt.reason}",
        *([f"- Paper: {cfg['paper']}"] if cfg.get("paper") else []),
        f"- Parameters: {summary.total_params / 1e6:.2f} M; MACs: {summary.total_macs / 1e9:.3f} G for one "
        f"{size} image",
        f"- Input: {size}, resized to {cfg['input_size'][-1] / cfg['crop_pct']:.0f} px and centre-cropped "
        f"(crop {cfg['crop_pct']:g}, {cfg['interpolation']}), normalised with mean {tuple(cfg['mean'])} and std "
        f"{tuple(cfg['std'])}",
        f"- Classes ({len(labels)}): " + ", ".join(labels[:50]) + (" ..." if len(labels) > 50 else ""),
    ]
    if run is not None:
        lines += ["", "## Training", *_recipe(run.config)]
        if run.metrics:
            lines += ["", "## Results", *_results(run)]
        if run.curves is not None:
            lines += ["", f"![Loss and accuracy per epoch]({CURVES})"]
    lines += [
        "",
        "## Intended use and limitations",
        f"Classifying images like those it was trained on into the {len(labels)} classes above. It has only seen "
        + (data if data else "its training data") + ": images from elsewhere (other cameras, other subjects, "
        "other resolutions) may be classified with confidence and wrongly, and it has no 'none of these' class. "
        "Measure it on your own data before relying on it.",
        "",
        "## How to use",
        *_usage(name, repo_id or "ORG/REPO", fmt),
        "",
        "## Licence",
        f"{license}" + (f"; it was fine-tuned from published weights licensed {inherited}" if inherited else ""),
        "",
    ]
    return "\n".join(lines)

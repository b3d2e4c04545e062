"""``save_pretrained``: a folder that ``create_model("local-dir:...")`` or the Hub can serve back.

The folder holds ``config.json`` (timm's keys plus ours: enough to rebuild the model with its
class names and input settings), ``model.safetensors`` (our layout; safetensors, so loading it
runs no code) and ``README.md``, a model card. Every file is written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from torch import nn

from ..weights.checkpoint_io import atomic_write, save_state_dict
from ..weights.hub import CONFIG_FILE
from ..weights.repo_config import config_of
from .card import model_card
from .run import CURVES, RunRecord

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_pretrained(model: nn.Module, directory: str | os.PathLike, class_names: list[str] | None = None,
                    repo_id: str | None = None, run: RunRecord | None = None, license: str | None = None) -> Path:
    """Write ``model`` (a zoo model, e.g. fine-tuned) as a model repository folder; returns the folder.

    ``class_names`` default to ``model.pretrained_cfg["label_names"]``; ``run`` (a training run
    read with :func:`read_run`) adds the recipe, the metrics and the curves to the card and the
    training config to config.json. ``repo_id`` is only named in the card's usage example.
    """
    directory = Path(directory)
    config = config_of(model, class_names)
    if class_names is not None:
        model.pretrained_cfg["label_names"] = list(class_names)
    if run is not None:
        config["training_config"] = run.config
    directory.mkdir(parents=True, exist_ok=True)
    save_state_dict(model.state_dict(), directory / WEIGHTS_FILE)
    _write_text(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    _write_text(directory / CARD_FILE, model_card(model, repo_id, run, license))
    if run is not None and run.curves is not None:
        atomic_write(directory / CURVES, lambda tmp: shutil.copyfile(run.curves, tmp))
    return directory

"""``save_pretrained``: a folder that timm, transformers and ``create_model("local-dir:...")`` load.

A model timm also has, built as the zoo builds it, is written in timm's own format (timm's
architecture name, config keys and parameter layout: ``timm.create_model("hf-hub:...",
pretrained=True)`` and transformers' ``pipeline("image-classification")`` load it), with what
splitattn needs to rebuild exactly its own model under a ``"splitattn"`` key the others ignore.
Any other model is written as splitattn's alone, in a config.json timm and transformers refuse
(``splitattn.weights.repo_config`` says how). The folder holds ``config.json``,
``model.safetensors`` (safetensors, so loading it runs no code) and ``README.md``, a model card
whose ``library_name`` is the library that loads it. Every file is written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from torch import nn

from ..weights.checkpoint_io import atomic_write, save_state_dict
from ..weights.convert import export_state_dict
from ..weights.hub import CONFIG_FILE
from ..weights.repo_config import config_of, repo_format
from .card import model_card
from .run import CURVES, RunRecord

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_pretrained(model: nn.Module, directory: str | os.PathLike, class_names: list[str] | None = None,
                    repo_id: str | None = None, run: RunRecord | None = None, license: str | None = None) -> Path:
    """Write ``model`` (a zoo model, e.g. fine-tuned) as a model repository folder; returns the folder.

    Args:
        model: a model built by ``splitattn.create_model`` (it carries ``pretrained_cfg``).
        directory: the folder to write (created if needed; files in it are replaced).
        class_names: its class names in output order; default ``model.pretrained_cfg["label_names"]``.
        repo_id: ``ORG/NAME``, only named in the card's usage examples.
        run: a training run read with :func:`read_run`: adds the recipe, the metrics and the curves
            to the card and the training config to config.json.
        license: the card's licence (default: that of the weights a run started from, else Apache-2.0).
    """
    directory = Path(directory)
    fmt = repo_format(model)
    config = config_of(model, class_names, run.config if run is not None else None, fmt)
    if class_names is not None:
        model.pretrained_cfg["label_names"] = list(class_names)
    directory.mkdir(parents=True, exist_ok=True)
    state = export_state_dict(model.state_dict(), fmt.layout, model.pretrained_cfg["architecture"])
    save_state_dict(state, directory / WEIGHTS_FILE)
    _write_text(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    _write_text(directory / CARD_FILE, model_card(model, repo_id, run, license, fmt))
    if run is not None and run.curves is not None:
        atomic_write(directory / CURVES, lambda tmp: shutil.copyfile(run.curves, tmp))
    return directory

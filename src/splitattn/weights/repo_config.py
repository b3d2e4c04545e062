"""``config.json`` of a model repository: enough to rebuild the model, in timm's keys.

We write timm's keys (``architecture``, ``num_classes``, ``model_args``, ``label_names``,
``pretrained_cfg``) plus ``library_name: splitattn``, so one reader takes both our repositories
and timm's: ours hold weights in our layout, timm's in timm's (renamed on load).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..errors import SplitattnError
from ..models import get_model_entry, list_models
from ..models.registry import split_name

LIBRARY = "splitattn"
# The input settings a repository may carry; the rest of a pretrained_cfg is the zoo's.
INPUT_KEYS = ("input_size", "crop_pct", "interpolation", "mean", "std")


@dataclass(frozen=True)
class RepoConfig:
    """What a repository's ``config.json`` says about the model in it."""

    architecture: str
    tag: str | None  # published weights the repository holds (a timm repository of a known tag), else None
    num_classes: int
    in_chans: int
    layout: str  # "ours" or "timm": how the repository's weight file names its parameters
    model_args: dict[str, Any] = field(default_factory=dict)
    label_names: list[str] | None = None
    input_cfg: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, config: dict[str, Any], origin: str) -> RepoConfig:
        """Read ours or timm's ``config.json``; an unknown architecture is named with close matches."""
        name = config.get("architecture")
        if not isinstance(name, str):
            raise SplitattnError(f"{origin}: config.json has no 'architecture' naming the model")
        base, tag = split_name(name)
        cfg = config.get("pretrained_cfg") if isinstance(config.get("pretrained_cfg"), dict) else {}
        try:
            entry = get_model_entry(base)
        except ValueError as error:
            known = len(list_models())
            raise SplitattnError(f"{origin}: config.json is for architecture {name!r}, which splitattn does not build "
                                 f"({str(error).split('.', 1)[1].strip()}) -- splitattn has {known} models of the "
                                 "SENet, SKNet and ResNeSt families") from None
        ours = config.get("library_name") == LIBRARY
        tag = None if ours else tag or cfg.get("tag")
        if tag not in entry.tags:  # weights nobody published under that tag: keep the input settings only
            tag = None
        labels = config.get("label_names")
        num_classes = int(config.get("num_classes", cfg.get("num_classes", 1000)))
        if labels is not None and len(labels) != num_classes:
            raise SplitattnError(f"{origin}: config.json lists {len(labels)} label_names for num_classes={num_classes}")
        input_cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k in INPUT_KEYS}
        model_args = dict(config.get("model_args") or {})
        in_chans = int(model_args.pop("in_chans", config.get("in_chans", (input_cfg.get("input_size") or (3,))[0])))
        num_classes = int(model_args.pop("num_classes", num_classes))
        if not ours:  # timm's own arguments (global_pool, drop_rate ...) mean nothing to our ResNet
            model_args = {}
        return cls(architecture=base, tag=tag, num_classes=num_classes, in_chans=in_chans,
                   layout="ours" if ours else "timm", model_args=model_args,
                   label_names=[str(label) for label in labels] if labels is not None else None,
                   input_cfg=input_cfg)


def config_of(model: Any, label_names: list[str] | None = None) -> dict[str, Any]:
    """The ``config.json`` that rebuilds ``model`` (a zoo model) with its classes and input settings."""
    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or "architecture" not in cfg:
        raise SplitattnError("save_pretrained needs a model built by splitattn.create_model "
                             "(it reads model.pretrained_cfg)")
    labels = label_names if label_names is not None else cfg.get("label_names")
    if labels is not None and len(labels) != model.num_classes:
        raise SplitattnError(f"{len(labels)} class names for a model with {model.num_classes} outputs")
    model_args = {k: v for k, v in getattr(model, "model_args", {}).items()
                  if k not in ("num_classes", "in_chans", "drop_rate", "drop_path_rate", "drop_block_rate")}
    try:
        json.dumps(model_args)
    except TypeError:
        raise SplitattnError(f"the model was built with arguments JSON cannot hold ({model_args}); only numbers, "
                             "strings, lists and dicts can be written to config.json") from None
    return {
        "architecture": cfg["architecture"],
        "num_classes": model.num_classes,
        "in_chans": model.in_chans,
        "num_features": model.num_features,
        "global_pool": "avg",
        "model_args": model_args,
        "label_names": list(labels) if labels is not None else None,
        "pretrained_cfg": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items() if k in INPUT_KEYS}
        | {"first_conv": cfg.get("first_conv"), "classifier": cfg.get("classifier"), "num_classes": model.num_classes},
        "library_name": LIBRARY,
        "library_version": _version(),
    }


def _version() -> str:
    try:
        return version(LIBRARY)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"

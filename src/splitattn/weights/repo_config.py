"""``config.json`` of a model repository: timm's own, or splitattn's alone, and how to read either back.

A model timm also has (``ModelEntry.timm_name``), built exactly as the zoo builds it, is shared in
timm's format: timm's architecture name, keys and parameter layout, so ``timm.create_model`` and
transformers' ``pipeline`` (its TimmWrapper) load it like any timm repository. What splitattn needs
to rebuild exactly its own model (its name, changed ``attn.*`` fields, the training run's config)
sits under a ``"splitattn"`` key that timm and transformers ignore.

Any other model (timm lacks the network, or it was built with arguments timm cannot take) is
shared as splitattn's alone, and its config.json is made so that neither timm nor transformers
takes it for theirs: it has no top-level ``pretrained_cfg`` (transformers' test for a timm config)
and its ``architecture`` is ``splitattn:NAME``, which timm refuses as an unknown model instead of
building a random network. The reader also takes the repositories earlier versions wrote
(``library_name: splitattn`` and our name as ``architecture``) and timm's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..errors import SplitattnError
from ..models import get_model_entry, list_models
from ..models.registry import split_name
from .convert import export_name

LIBRARY = "splitattn"
OURS = "splitattn"  # the config.json key holding what only splitattn reads
SPLITATTN_ONLY_PREFIX = "splitattn:"  # the architecture of a splitattn-only repository, unknown to timm
# The input settings a repository may carry; the rest of a pretrained_cfg is the zoo's.
INPUT_KEYS = ("input_size", "crop_pct", "interpolation", "mean", "std")
# Arguments that leave the network's layers, names and eval outputs as timm builds them: a model
# built with only these (and output_stride 32) is timm's network. Dropout rates act in training only.
_TIMM_NEUTRAL = {"num_classes": None, "in_chans": None, "drop_rate": None, "drop_path_rate": None,
                 "drop_block_rate": None, "output_stride": 32}
_NOT_REBUILT = ("num_classes", "in_chans", "drop_rate", "drop_path_rate", "drop_block_rate")


@dataclass(frozen=True)
class RepoFormat:
    """How a model is shared: in timm's format (``timm_name`` set) or as splitattn's alone (``reason`` why)."""

    timm_name: str | None
    reason: str | None = None

    @property
    def library(self) -> str:
        """The ``library_name`` of the model card: the library the Hub offers the repository to."""
        return "timm" if self.timm_name is not None else LIBRARY

    @property
    def layout(self) -> str:
        """The parameter layout of the weight file (``splitattn.weights.convert``)."""
        return "timm" if self.timm_name is not None else "ours"


def repo_format(model: Any) -> RepoFormat:
    """timm's format when timm has the network and ``model`` was built as the zoo (or timm) builds it.

    Args:
        model: a zoo model (it carries ``pretrained_cfg`` and ``model_args``).
    """
    name = _architecture(model)
    entry = get_model_entry(name)
    if entry.timm_name is None:
        return RepoFormat(None, f"timm has no {name} network (no timm model has its layers), so only "
                                "splitattn builds it")
    changed = {k: v for k, v in getattr(model, "model_args", {}).items()
               if k not in _TIMM_NEUTRAL or (_TIMM_NEUTRAL[k] is not None and v != _TIMM_NEUTRAL[k])}
    if changed:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items()))
        return RepoFormat(None, f"it was built with {shown}, which timm's {entry.timm_name} cannot be given, so "
                                "timm would build another network")
    return RepoFormat(entry.timm_name)


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
        """Read a config.json: ours (timm's format or splitattn-only), an earlier splitattn's, or timm's.

        An unknown architecture is named with close matches.

        Args:
            config: the parsed config.json.
            origin: the repository, for messages.
        """
        ours = config.get(OURS)
        if isinstance(ours, dict):  # written by this version: the "splitattn" key says it all
            config = {**config, **ours, "library_name": LIBRARY}
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
        is_ours = config.get("library_name") == LIBRARY
        tag = None if is_ours else tag or cfg.get("tag")
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
        if not is_ours:  # timm's own arguments (global_pool, drop_rate ...) mean nothing to our ResNet
            model_args = {}
        layout = config.get("layout", "ours") if is_ours else "timm"
        return cls(architecture=base, tag=tag, num_classes=num_classes, in_chans=in_chans, layout=layout,
                   model_args=model_args, label_names=[str(label) for label in labels] if labels is not None else None,
                   input_cfg=input_cfg)


def _architecture(model: Any) -> str:
    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or "architecture" not in cfg:
        raise SplitattnError("save_pretrained needs a model built by splitattn.create_model "
                             "(it reads model.pretrained_cfg)")
    return cfg["architecture"]


def _listed(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def config_of(model: Any, label_names: list[str] | None = None, training_config: dict[str, Any] | None = None,
              fmt: RepoFormat | None = None) -> dict[str, Any]:
    """The ``config.json`` that shares ``model`` (a zoo model) with its classes and input settings.

    Args:
        model: a zoo model, e.g. fine-tuned.
        label_names: its class names, in output order (default: ``pretrained_cfg["label_names"]``).
        training_config: the training run's config, kept for splitattn (the model card cites it).
        fmt: the repository's format (default :func:`repo_format` of the model).
    """
    name = _architecture(model)
    cfg = model.pretrained_cfg
    fmt = fmt or repo_format(model)
    labels = label_names if label_names is not None else cfg.get("label_names")
    if labels is not None and len(labels) != model.num_classes:
        raise SplitattnError(f"{len(labels)} class names for a model with {model.num_classes} outputs")
    model_args = {k: v for k, v in getattr(model, "model_args", {}).items() if k not in _NOT_REBUILT}
    try:
        json.dumps(model_args)
    except TypeError:
        raise SplitattnError(f"the model was built with arguments JSON cannot hold ({model_args}); only numbers, "
                             "strings, lists and dicts can be written to config.json") from None
    inputs = _listed({k: v for k, v in cfg.items() if k in INPUT_KEYS})
    ours = {"architecture": name, "layout": fmt.layout, "in_chans": model.in_chans, "model_args": model_args,
            "pretrained_cfg": inputs, "training_config": training_config, "library_version": _version()}
    shared = {"num_classes": model.num_classes, "num_features": model.num_features, "global_pool": "avg",
              "label_names": list(labels) if labels is not None else None}
    if fmt.timm_name is None:
        return {"architecture": SPLITATTN_ONLY_PREFIX + name, "library_name": LIBRARY,
                "splitattn_only": fmt.reason, **shared, OURS: ours}
    timm_cfg = inputs | {
        "input_size": [model.in_chans, *inputs["input_size"][1:]], "crop_mode": "center", "fixed_input_size": False,
        "num_classes": model.num_classes, "first_conv": export_name(cfg.get("first_conv") or "conv1", "timm", name),
        "classifier": export_name(cfg.get("classifier") or "fc", "timm", name),
    }
    # timm passes model_args to the network's constructor (transformers adds num_classes itself): in_chans only.
    timm_args = {"in_chans": model.in_chans} if model.in_chans != 3 else {}
    return {"architecture": fmt.timm_name, **shared, "model_args": timm_args, "pretrained_cfg": timm_cfg, OURS: ours}


def _version() -> str:
    try:
        return version(LIBRARY)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"

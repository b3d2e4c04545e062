"""``pretrained=...``: from a zoo name, a file or a URL to weights inside a model."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import SplitattnError
from ..interface import option
from ..models import get_model_entry
from .adapt import fit_to_model
from .checkpoint_io import CheckpointError, load_checkpoint_file
from .convert import convert_state_dict, detect_source, unwrap_state_dict
from .download import check_named_hash, download, is_url, local_path
from .fetch import fetch_published
from .hub import Repo, is_repo_spec

PUBLISHED = "published"  # what configs and command lines write for pretrained=True


def resolve_weights(model_name: str, pretrained: bool | str | os.PathLike,
                    tag: str | None = None) -> tuple[Path, str | None, str]:
    """The local file to load for ``pretrained`` (fetching it if needed), its layout and where it came from.

    ``True`` or ``"published"`` means the published weights ``tag`` (default: the model's default
    tag), from the first of their sources that serves them; anything else is a path, a URL or a
    repository (``hf-hub:org/repo``, ``local-dir:PATH``).
    """
    if pretrained is True or pretrained == PUBLISHED:
        weights = get_model_entry(model_name).weights_for(tag)
        if weights is None:
            raise SplitattnError(
                f"no published weights are registered for {model_name!r} (`splitattn zoo --weights` lists the "
                f"models that have some); load a file you have with {option('pretrained', 'PATH')}"
            )
        fetched = fetch_published(model_name, weights)
        return fetched.path, fetched.source.layout, fetched.source.url
    location = os.fspath(pretrained)
    if is_repo_spec(location):
        return Repo(location).weights_file(), None, location
    if is_url(location) and not location.startswith("file:"):
        return download(location), None, location
    path = local_path(location)  # read in place, and checked against a hash its name carries
    check_named_hash(path)
    return path, None, location


def describe_mismatch(model_name: str, missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    def listing(title: str, keys: list[str]) -> str:
        shown = ", ".join(keys[:8]) + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")
        return f"\n  {title} ({len(keys)}): {shown}" if keys else ""

    return (
        f"the checkpoint does not fit {model_name!r}; is it for another architecture?"
        + listing("missing keys", missing)
        + listing("unexpected keys", unexpected)
        + listing("shape mismatches", shapes)
    )


def to_our_layout(
    state: dict[str, torch.Tensor], model_state: dict[str, torch.Tensor], model_name: str, layout: str | None = None
) -> dict[str, torch.Tensor]:
    """Rename ``state`` into our layout; ``layout`` (ours, official, timm) is recognised when None."""
    layout = layout or detect_source(state, set(model_state), model_name)
    return state if layout == "ours" else convert_state_dict(state, layout, model_name)


def check_fits(state: dict[str, torch.Tensor], model_state: dict[str, torch.Tensor], model_name: str,
               origin: str, may_lack: str | None = None) -> None:
    """Raise a CheckpointError listing missing, unexpected and mis-shaped keys, if there are any.

    Keys starting with ``may_lack`` (a dropped classifier) may be absent from ``state``; BN's
    ``num_batches_tracked`` counters may be absent from either side (``FrozenBatchNorm2d`` has
    none, and they change nothing a model computes).
    """
    def counter(key: str) -> bool:
        return key.endswith(".num_batches_tracked")

    missing = sorted(k for k in model_state
                     if k not in state and not counter(k) and not (may_lack and k.startswith(may_lack)))
    unexpected = sorted(k for k in state if k not in model_state and not counter(k))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(model_state[k].shape)}"
        for k in state
        if k in model_state and state[k].shape != model_state[k].shape
    )
    if missing or unexpected or shapes:
        raise CheckpointError(f"{origin}: " + describe_mismatch(model_name, missing, unexpected, shapes))


def classifier_outputs(state: dict) -> int:
    """Classifier outputs of a state dict; ``fc`` in every layout but the original SENet's ``last_linear``."""
    return next((int(state[k].shape[0]) for k in ("fc.weight", "last_linear.weight") if k in state), 0)


def load_pretrained(model: nn.Module, model_name: str, pretrained: bool | str | os.PathLike,
                    tag: str | None = None) -> nn.Module:
    """Load weights into ``model`` (built by create_model for ``model_name``), converting as needed.

    The layout (ours, official ResNeSt or timm) is recognised from the parameter names. The first
    conv is adapted to the model's input channels and a classifier of another size is dropped.
    ``model.pretrained_cfg["loaded_from"]`` records the file's source.
    """
    path, layout, origin = resolve_weights(model_name, pretrained, tag)
    load_state(model, model_name, unwrap_state_dict(load_checkpoint_file(path)), str(path), layout)
    if isinstance(getattr(model, "pretrained_cfg", None), dict):
        model.pretrained_cfg["loaded_from"] = origin
    return model


def load_state(model: nn.Module, model_name: str, state: dict, origin: str, layout: str | None = None) -> nn.Module:
    """Load weights already read (any layout; ``origin`` names them in errors) into ``model``."""
    model_state = model.state_dict()
    state = to_our_layout(state, model_state, model_name, layout)
    cfg = get_model_entry(model_name).pretrained_cfg
    state = fit_to_model(state, model_state, cfg.first_conv, cfg.classifier, origin)
    check_fits(state, model_state, model_name, origin, may_lack=f"{cfg.classifier}.")
    with torch.no_grad():
        # check_fits allowed only a dropped classifier to be missing; the model keeps its fresh head.
        model.load_state_dict(state, strict=False)
    return model

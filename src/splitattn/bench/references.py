"""The same network from the reference packages (timm, the official ``resnest``), when installed.

Comparing against them is the benchmark's job, so this is the one place the package touches them;
they are imported lazily, here only, and their absence just removes their column.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

from torch import nn

from ..models import get_model_entry
from ..models.resnest import TIMM_TO_OFFICIAL
from ..weights import export_state_dict


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def timm_name(name: str) -> str | None:
    """timm's name for zoo model ``name``, or None when timm has no such network (the zoo's ``timm_name``)."""
    return get_model_entry(name).timm_name


def official_name(name: str) -> str | None:
    """The official ``resnest`` package's name for ``name``, or None (SE/SK models, resnest14d ...)."""
    entry = get_model_entry(name)
    return name if entry.reference == "official" else TIMM_TO_OFFICIAL.get(name)


def load_same_weights(reference: nn.Module, label: str, name: str, state_dict: dict | None) -> bool:
    """Give ``reference`` our weights (converted to its layout); False where they do not fit.

    Identical weights make the comparison fair beyond FLOPs: random inits differ in how many
    denormal numbers they produce, and denormals are many times slower on CPUs.
    """
    if state_dict is None:
        return False
    target_name = name if label == "timm" else official_name(name)
    try:
        reference.load_state_dict(export_state_dict(state_dict, label, target_name or name))
    except (RuntimeError, ValueError):
        return False
    return True


def reference_builders(
    name: str, num_classes: int = 1000, state_dict: dict | None = None
) -> dict[str, Callable[[], nn.Module]]:
    """Label -> zero-argument builder of each installed reference implementation of ``name``.

    With ``state_dict`` (our layout), each reference is given the same weights where they fit.
    """
    builders: dict[str, Callable[[], nn.Module]] = {}
    timm = _optional("timm")
    if timm is not None and (tname := timm_name(name)) is not None and tname in timm.list_models():
        def build_timm(tname: str = tname) -> nn.Module:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = timm.create_model(tname, pretrained=False, num_classes=num_classes)
            load_same_weights(model, "timm", name, state_dict)
            return model

        builders["timm"] = build_timm
    official = _optional("resnest.torch")
    if official is not None and (oname := official_name(name)) is not None and hasattr(official, oname):
        def build_official(oname: str = oname) -> nn.Module:
            model = getattr(official, oname)(num_classes=num_classes)
            load_same_weights(model, "official", name, state_dict)
            return model

        builders["official"] = build_official
    return builders

"""Map reference checkpoints' parameter names onto ours.

Our names already agree with the official ResNeSt release and with timm's ResNet, ResNeSt and
SE-ResNet models, so for those the mapping is the identity. Two layouts need renaming: timm's
SK networks (which wrap each conv and its BN in one module) and the original SENet release that
timm keeps as ``legacy_*`` (``layer0``, ``se_module``, ``last_linear``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial

import torch

from ..errors import ArgumentTypeError, SplitattnError
from ..models import get_model_entry
from ..models.registry import REFERENCES

SOURCES = REFERENCES  # the layouts we read are the reference implementations'
TARGETS = ("ours", *SOURCES)

# timm SK blocks: ConvNormAct modules ``convN.conv`` / ``convN.bn`` -> ``convN`` / ``bnN``.
_SK_RULES = [
    (re.compile(r"^(layer\d+\.\d+)\.conv([123])\.conv\."), r"\1.conv\2."),
    (re.compile(r"^(layer\d+\.\d+)\.conv([123])\.bn\."), r"\1.bn\2."),
]
# The original SENet release.
_LEGACY_RULES = [
    (re.compile(r"^(layer\d+\.\d+)\.se_module\."), r"\1.se."),
    (re.compile(r"^last_linear\."), "fc."),
]
_LEGACY_STEM = {"conv1": "conv1", "bn1": "bn1"}
_LEGACY_DEEP_STEM = {"conv1": "conv1.0", "bn1": "conv1.1", "conv2": "conv1.3", "bn2": "conv1.4",
                     "conv3": "conv1.6", "bn3": "bn1"}

# The same renamings read backwards, for exporting our weights to timm.
_SK_EXPORT_RULES = [
    (re.compile(r"^(layer\d+\.\d+)\.conv([123])\.weight$"), r"\1.conv\2.conv.weight"),
    (re.compile(r"^(layer\d+\.\d+)\.bn([123])\."), r"\1.conv\2.bn."),
]
_LEGACY_EXPORT_RULES = [
    (re.compile(r"^(layer\d+\.\d+)\.se\."), r"\1.se_module."),
    (re.compile(r"^fc\."), "last_linear."),
]


def unwrap_state_dict(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """The bare state dict inside a training checkpoint, without DDP/compile prefixes.

    Accepts a plain state dict or a dict holding one under ``state_dict``, ``model``,
    ``model_state`` or ``state_dict_ema``; strips ``module.`` (DistributedDataParallel) and
    ``_orig_mod.`` (torch.compile) prefixes.
    """
    if not isinstance(checkpoint, Mapping):
        raise ArgumentTypeError(f"expected a state dict (a mapping of names to tensors), got "
                                f"{type(checkpoint).__name__}")
    state = checkpoint
    for key in ("state_dict", "model", "model_state", "state_dict_ema"):
        inner = state.get(key) if isinstance(state, Mapping) else None
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            state = inner
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise SplitattnError(
            "no tensors found in the checkpoint: expected a state dict, or a dict holding one under "
            "'state_dict' or 'model'"
        )
    out = {}
    for key, value in tensors.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def _apply(rules: list[tuple[re.Pattern[str], str]], key: str) -> str:
    for pattern, replacement in rules:
        key = pattern.sub(replacement, key)
    return key


def _legacy_key(key: str, deep_stem: bool) -> str:
    match = re.match(r"^layer0\.(\w+)\.(.+)$", key)
    if match:
        stem = _LEGACY_DEEP_STEM if deep_stem else _LEGACY_STEM
        if match.group(1) not in stem:
            raise SplitattnError(f"unexpected stem parameter {key!r} in an original-SENet checkpoint")
        return f"{stem[match.group(1)]}.{match.group(2)}"
    return _apply(_LEGACY_RULES, key)


def _legacy_export_key(key: str, deep_stem: bool) -> str:
    stem = {v: k for k, v in (_LEGACY_DEEP_STEM if deep_stem else _LEGACY_STEM).items()}
    for ours, theirs in stem.items():
        if key.startswith(ours + "."):
            return f"layer0.{theirs}.{key[len(ours) + 1:]}"
    return _apply(_LEGACY_EXPORT_RULES, key)


def _renamer(scheme: str, deep_stem: bool, export: bool) -> Callable[[str], str]:
    """How keys are renamed under a zoo entry's key-layout ``scheme`` (see ``ModelEntry.key_layouts``)."""
    if scheme == "same":
        return str
    if scheme == "senet_legacy":
        return partial(_legacy_export_key if export else _legacy_key, deep_stem=deep_stem)
    if scheme == "timm_sk":
        return partial(_apply, _SK_EXPORT_RULES if export else _SK_RULES)
    raise SplitattnError(f"unknown key layout scheme {scheme!r}; expected same, senet_legacy or timm_sk")


def _key_renamer(layout: str, model_name: str, *, export: bool) -> Callable[[str], str]:
    """How each key is renamed from ``layout`` to ours, or from ours to ``layout`` with ``export``."""
    if layout == "ours":
        return str
    entry = get_model_entry(model_name)
    scheme = entry.key_layouts.get(layout)
    if scheme is None:
        have = ", ".join(sorted(entry.key_layouts)) or "none"
        raise SplitattnError(f"the {layout} release has no {model_name!r}; its checkpoints come in these "
                             f"layouts: {have}")
    return _renamer(scheme, entry.architecture.get("deep_stem", False), export)


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor], source: str, model_name: str
) -> dict[str, torch.Tensor]:
    """Rename a reference implementation's state dict so ``create_model(model_name)`` loads it.

    Args:
        state_dict: the reference model's ``state_dict()`` (or a checkpoint wrapping one).
        source: ``"official"`` (the ResNeSt authors' package) or ``"timm"``.
        model_name: the zoo name of the model the weights are for.

    Returns a new dict; tensors are shared, not copied. Load it with ``strict=True``.
    """
    if source not in SOURCES:
        raise SplitattnError(f"source must be one of {SOURCES}, got {source!r}")
    rename = _key_renamer(source, model_name, export=False)
    return {rename(k): v for k, v in unwrap_state_dict(state_dict).items()}


def export_state_dict(
    state_dict: Mapping[str, torch.Tensor], target: str, model_name: str
) -> dict[str, torch.Tensor]:
    """The inverse of :func:`convert_state_dict`: our names to a reference's (``timm`` or ``official``).

    ``target="ours"`` returns the state dict unchanged (after unwrapping training checkpoints).
    """
    if target not in TARGETS:
        raise SplitattnError(f"target must be one of {TARGETS}, got {target!r}")
    rename = _key_renamer(target, model_name, export=True)
    return {rename(k): v for k, v in unwrap_state_dict(state_dict).items()}


def export_name(module: str, target: str, model_name: str) -> str:
    """What ``target`` (``timm``, ``official``) calls our module ``module`` (``"fc"`` -> ``"last_linear"``).

    A shared repository names its first conv and classifier in its config, so that timm adapts the
    one to other input channels and drops the other for another head; they must be timm's names.

    Args:
        module: a module path of our model, e.g. ``"conv1.0"`` or ``"fc"``.
        target: the layout to name it in (``"ours"`` returns it unchanged).
        model_name: the zoo name of the model.
    """
    if target not in TARGETS:
        raise SplitattnError(f"target must be one of {TARGETS}, got {target!r}")
    return _key_renamer(target, model_name, export=True)(f"{module}.weight").removesuffix(".weight")


def detect_source(state_dict: Mapping[str, torch.Tensor], expected_keys: set[str], model_name: str) -> str:
    """Which layout a state dict is in: ``"ours"``, ``"official"`` or ``"timm"``, by trying each.

    Our names coincide with the official and timm names for most models, so "ours" wins ties.
    Returns the layout whose renaming yields exactly ``expected_keys``, or the closest one.
    """
    candidates = ["ours", *get_model_entry(model_name).key_layouts]
    keys = list(unwrap_state_dict(state_dict))
    best, best_mismatch = "ours", None
    for source in candidates:
        rename = _key_renamer(source, model_name, export=False)
        mismatch = len({rename(k) for k in keys} ^ expected_keys)
        if mismatch == 0:
            return source
        if best_mismatch is None or mismatch < best_mismatch:
            best, best_mismatch = source, mismatch
    return best

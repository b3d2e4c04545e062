"""torch.hub entry points: one per zoo model, ``torch.hub.load("<owner>/splitattn", "resnest50", pretrained=True)``.

torch.hub fetches this repository without installing it, so the package is imported from the
checkout's own ``src/`` (put first on ``sys.path``): the code torch.hub downloaded is the code that
runs, even where an older splitattn is pip-installed. Each entry point is ``create_model`` under the
zoo name; its docstring (``torch.hub.help``) names the family, the parameters and the published
weights, counted when first asked for, since building 43 models on every ``torch.hub.load`` would
cost seconds. Every public name here is a zoo name: torch.hub lists any callable not starting with
``_``, so helpers and imports are private.
"""

from __future__ import annotations

import os as _os
import sys as _sys
import warnings as _warnings
from typing import Any as _Any

# What torch.hub checks importable before calling an entry point: the package's import-time needs.
dependencies = ["torch", "safetensors", "tqdm"]

_SRC = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "src")
if _os.path.isdir(_os.path.join(_SRC, "splitattn")) and _SRC not in _sys.path:
    _sys.path.insert(0, _SRC)

import splitattn as _splitattn  # noqa: E402  (after the checkout's src/ is on the path)

_loaded_from = _os.path.dirname(_os.path.dirname(_os.path.abspath(_splitattn.__file__)))
if _os.path.isdir(_os.path.join(_SRC, "splitattn")) and _os.path.normcase(_loaded_from) != _os.path.normcase(_SRC):
    _warnings.warn(f"splitattn was already imported from {_loaded_from}, before this torch.hub checkout "
                   f"({_SRC}): that copy is used; restart Python to use the checkout's", stacklevel=2)


class _Entrypoint:
    """``create_model(name, pretrained=..., **kwargs)`` under a zoo name, with the model's description as help."""

    def __init__(self, name: str) -> None:
        self.__name__ = self.__qualname__ = name
        self.__module__ = __name__
        self._doc: str | None = None

    def __call__(self, pretrained: bool | str = False, **kwargs: _Any) -> _Any:
        entry = _splitattn.get_model_entry(self.__name__)
        name = self.__name__
        if isinstance(pretrained, str) and pretrained in entry.tags:  # a tag: those weights and their input settings
            name, pretrained = f"{name}.{pretrained}", True
        return _splitattn.create_model(name, pretrained=pretrained, **kwargs)

    @property
    def __doc__(self) -> str:  # type: ignore[override]  # torch.hub.help reads it: written on first use
        if self._doc is None:
            self._doc = _describe(self.__name__)
        return self._doc

    def __repr__(self) -> str:
        return f"<torch.hub entry point {self.__name__}>"


def _describe(name: str) -> str:
    """What ``torch.hub.help`` shows: the network, its size, its weights and how to call it."""
    import torch

    entry = _splitattn.get_model_entry(name)
    with torch.device("meta"):  # counted without allocating weights
        params = sum(p.numel() for p in entry.build(None).parameters())
    cfg = entry.pretrained_cfg
    lines = [f"{name}: a {entry.family} network ({params / 1e6:.2f} M parameters, 1000 classes), "
             f"{entry.reference} implementation's layout; input {cfg.input_size[1]} px, "
             f"crop {cfg.crop_pct}, {cfg.interpolation}."]
    if cfg.paper is not None:
        reported = f", {cfg.paper_top1}% ImageNet top-1 there" if cfg.paper_top1 is not None else ""
        lines.append(f"Paper: {cfg.paper}{reported}.")
    if entry.weights:
        lines.append("Published weights (tag: ImageNet top-1, measured by): " + "; ".join(
            f"{w.tag}: {w.top1}% ({w.top1_by})" for w in entry.weights) + f". Default: {entry.tags[0]}.")
    else:
        lines.append("No published weights: pretrained=True is refused; pass a checkpoint's path instead.")
    lines += [
        "",
        "Args:",
        "    pretrained: False (random weights), True (the default published weights), a tag above, or a",
        "        checkpoint's path / URL / model repository, as splitattn.create_model takes it.",
        "    kwargs: any splitattn.create_model argument: num_classes (a new classifier for fine-tuning),",
        "        in_chans, drop_rate, drop_path_rate, output_stride, features_only, attn ...",
    ]
    return "\n".join(lines)


for _name in _splitattn.list_models():
    globals()[_name] = _Entrypoint(_name)
del _name

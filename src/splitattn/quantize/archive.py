"""Saving a quantized model once and loading it without the float model or a calibration set.

The converted graph is exported again (``torch.export``, dynamic batch) and written with
``torch.export.save`` as a ``.pt2`` archive: the graph as serialized code-free IR plus the int8
weights and activation scales, and our metadata (classes, input settings, which layers stayed in
float) as a JSON file inside it. Loading rebuilds the graph from that IR; nothing is unpickled.
The file is written atomically, like every checkpoint of the project.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from pathlib import Path

import torch

from ..errors import ArgumentTypeError, MissingFileError, SplitattnError
from ..weights.checkpoint_io import atomic_write
from .pt2e import QuantizedModel, _dynamic_batch

METADATA = "splitattn.json"
FORMAT = "splitattn-int8-pt2e/1"


def save_quantized(model: QuantizedModel, path: str | os.PathLike, example: torch.Tensor | None = None) -> Path:
    """Write ``model`` to ``path`` (``.pt2``); ``example`` is any input batch of the right shape
    (default: 2 images at the model's input size)."""
    if not isinstance(model, QuantizedModel):
        raise ArgumentTypeError(f"save_quantized takes a model from splitattn.quantize(), got {type(model).__name__}")
    if example is None:
        channels, height, width = model.pretrained_cfg.get("input_size", (model.in_chans, 224, 224))
        example = torch.zeros(2, channels, height, width)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.export.export(model.graph, (example,), dynamic_shapes=_dynamic_batch())
    metadata = json.dumps({"format": FORMAT, **model.info})
    path = Path(path)
    if path.suffix != ".pt2":
        raise SplitattnError(f"a quantized model is saved as a .pt2 archive, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:  # a file object: torch.export.save wants names ending in .pt2
            torch.export.save(program, handle, extra_files={METADATA: metadata})

    atomic_write(path, write)
    return path


def is_quantized_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a ``.pt2`` archive (what ``save_quantized`` writes)."""
    return str(path).endswith(".pt2")


def load_quantized(path: str | os.PathLike, compile: bool = True) -> QuantizedModel:
    """A model written by ``save_quantized``, ready to run (compiled on first call unless ``compile=False``)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no quantized model at {path}")
    # The graph's quantize / dequantize steps are torch.ops.quantized_decomposed operators, which
    # exist only once this module has registered them; a fresh process has not (nor imported torchao).
    importlib.import_module("torch.ao.quantization.fx._decomposed")
    extra = {METADATA: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path), extra_files=extra)
    except Exception as error:  # a zip of something else, or from an incompatible torch
        raise SplitattnError(f"{path} is not a quantized model archive that this torch can read: {error}") from None
    try:
        info = json.loads(extra[METADATA] or "{}")
    except json.JSONDecodeError:
        info = {}
    if info.get("format") != FORMAT:
        raise SplitattnError(f"{path} is a torch.export archive but not one of splitattn's quantized models "
                             f"(no {METADATA} of format {FORMAT!r}); write it with splitattn.quantize.save_quantized")
    info.pop("format")
    return QuantizedModel(program.module(), info, compiled=compile)

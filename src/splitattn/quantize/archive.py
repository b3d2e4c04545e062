"""Saving a quantized model once and loading it without the float model or a calibration set.

The converted graph is exported again (``torch.export``, dynamic batch) and written with
``torch.export.save`` as a ``.pt2`` archive: the graph as serialized code-free IR plus the int8
weights and activation scales, and our metadata (classes, input settings, which layers stayed in
float) as a JSON file inside it. Loading rebuilds the graph from that IR; nothing is unpickled.
The file is written atomically, like every checkpoint of the project.

``save_quantized(..., aot=True)`` writes an ahead-of-time compiled package instead
(:mod:`splitattn.deploy.aot`): the int8 graph compiled by AOTInductor at the example's static
shape into a shared library that loads and runs without compiling (seconds, not the minute an
inductor compile of a ResNeSt-50 takes), checked against the float model before it is written.
It runs only with this torch on a CPU like this one, and loading it runs its compiled code: load
only packages you made. ``load_quantized`` tells the two apart by their metadata.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..deploy.aot import AotModel, check_agreement, compile_package, load_package, read_package_info, save_package
from ..deploy.onnxruntime_model import OnnxRuntimeModel, load_onnxruntime
from ..deploy.openvino_model import OpenVinoModel, load_openvino, save_openvino
from ..errors import ArgumentTypeError, MissingFileError, SplitattnError
from ..weights.checkpoint_io import atomic_write
from .pt2e import QuantizedModel, _dynamic_batch

METADATA = "splitattn.json"
# Where int8 is checked on save (AOT packages, OpenVINO IRs), the share of the calibration images
# whose top-1 must stay float32's: a broken quantization agrees on a few percent, a sound one on a
# trained model (the digits model: 100%) on nearly all; a barely trained one sits near it.
DEFAULT_MIN_AGREEMENT = 0.95
FORMAT = "splitattn-int8-pt2e/1"


def save_quantized(model: QuantizedModel | OpenVinoModel, path: str | os.PathLike,
                   example: torch.Tensor | None = None, *, aot: bool = False, float_model: nn.Module | None = None,
                   check_batches: Sequence[torch.Tensor] = (), min_agreement: float = DEFAULT_MIN_AGREEMENT) -> Path:
    """Write ``model`` to ``path``: ``.pt2`` for the inductor engine's, ``.xml`` for OpenVINO's.

    Args:
        model: what :func:`splitattn.quantize.quantize` returned.
        path: the file to write, atomically (``.pt2``; an OpenVINO model's ``NAME.xml``, weights in
            ``NAME.bin``).
        example: any input batch of the right shape (default: 2 images at the model's input size);
            with ``aot`` its batch size is the one compiled (other batches are padded or split).
        aot: write an ahead-of-time compiled package (loads without compiling; runs only with this
            torch on a CPU like this one; loading runs its code) instead of the portable archive.
        float_model: with ``aot``, the float model the package is checked against before it is
            written: top-1 agreement on ``check_batches`` at least ``min_agreement`` (0 to 1).
        check_batches: float32 image batches for that check (the calibration batches).
        min_agreement: the lowest top-1 agreement with ``float_model`` that is written.

    An OpenVINO model is compiled already: it is checked like a package (``float_model``,
    ``check_batches``) and written as its IR; ``example`` and ``aot`` do not apply to it.
    """
    if isinstance(model, OpenVinoModel):
        if aot:
            raise SplitattnError("aot=True compiles with AOTInductor; an OpenVINO model is compiled by OpenVINO "
                                 "when it loads (save it without aot)")
        if float_model is not None and check_batches:
            model.info["float_top1_agreement"] = check_agreement(model, float_model.eval(), check_batches,
                                                                 min_agreement, "the OpenVINO int8 model")
        return save_openvino(model, path)
    if not isinstance(model, QuantizedModel):
        raise ArgumentTypeError(f"save_quantized takes a model from splitattn.quantize(), got {type(model).__name__}")
    if example is None:
        channels, height, width = model.pretrained_cfg.get("input_size", (model.in_chans, 224, 224))
        example = torch.zeros(2, channels, height, width)
    if aot:
        return _save_package(model, Path(path), example, float_model, check_batches, min_agreement)
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


def compile_quantized_package(model: QuantizedModel, example: torch.Tensor) -> AotModel:
    """``model``'s int8 graph compiled ahead of time at ``example``'s shape, loaded and ready to run
    (what ``save_quantized(aot=True)`` writes, before its check against the float model)."""
    return compile_package(model.graph, example, {**model.info, "precision": "int8"})


def _save_package(model: QuantizedModel, path: Path, example: torch.Tensor, float_model: nn.Module | None,
                  check_batches: Sequence[torch.Tensor], min_agreement: float) -> Path:
    if path.suffix != ".pt2":
        raise SplitattnError(f"a compiled int8 package is saved as a .pt2 file, got {str(path)!r}")
    package = compile_quantized_package(model, example)
    if float_model is not None and check_batches:
        package.info["float_top1_agreement"] = check_agreement(package, float_model.eval(), check_batches,
                                                               min_agreement)
    return save_package(package, path)


# Files another engine runs, by suffix, and how each is loaded (the metadata inside says the rest).
ENGINE_FILES = {".xml": load_openvino, ".onnx": load_onnxruntime}
SAVED_SUFFIXES = (".pt2", *ENGINE_FILES)


def is_quantized_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a file of ``save_quantized`` (or ``save_package``, ``save_openvino``,
    ``save_onnxruntime``) by its suffix: a ``.pt2`` archive or compiled package, an OpenVINO
    ``.xml`` or an onnxruntime ``.onnx``."""
    return str(path).endswith(SAVED_SUFFIXES)


def load_quantized(path: str | os.PathLike,
                   compile: bool = True) -> QuantizedModel | AotModel | OpenVinoModel | OnnxRuntimeModel:
    """A model written by ``save_quantized`` (or ``save_package``, ``save_openvino``,
    ``save_onnxruntime``), ready to run.

    An archive's graph is compiled on its first call unless ``compile=False``; a compiled package
    (told by its metadata, read without loading it) runs at once, without compiling, and
    ``compile`` does not apply. Loading a package runs its compiled code: load only packages you
    made (an archive holds no code, nor does an OpenVINO ``.xml`` or an ``.onnx`` file, which their
    engines compile as they load).

    Args:
        path: the ``.pt2``, ``.xml`` or ``.onnx`` file.
        compile: compile an archive's int8 graph with inductor on first call (False: run it as is).
    """
    path = Path(path)
    if path.suffix in ENGINE_FILES:
        return ENGINE_FILES[path.suffix](path)
    if not path.is_file():
        raise MissingFileError(f"no quantized model at {path}")
    if read_package_info(path) is not None:
        return load_package(path)
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

"""Ahead-of-time compiled packages (AOTInductor): compiled once when made, loaded and run without compiling.

``torch.compile`` compiles on the first call of every process, which for an int8 or compiled
ResNeSt takes from half a minute to a few minutes on a small CPU. A package does that work once:
the model is captured with ``torch.export`` at one static input shape, compiled by AOTInductor
(weights frozen into constants, so the convs are packed for oneDNN once and int8 patterns lowered
to oneDNN's int8 kernels, as :class:`FrozenInductorModel` does) into a C++ shared library with its
weights, and written as a ``.pt2`` package with our metadata beside it (``extra/splitattn.json``:
classes, input settings, the batch size it was compiled for). Loading maps the library and runs:
no Python tracing, no inductor, no C++ compiler. A batch of another size is padded or split to the
compiled size (:class:`FixedBatch`); every image is still computed on its own.

**Loading a package runs native code.** The package holds a shared library (``.so``) that
loading executes, like importing a Python extension: load only packages you made yourself, or
that someone you trust built. A ``torch.export`` archive (``save_quantized`` without ``aot``)
holds no code and is the format to take from elsewhere. Nothing here unpickles (the loader does
not read pickled weights; the metadata is JSON), and the metadata is read from the zip before the
library is touched, so a package from another torch version or for a CPU without the instruction
sets it was compiled for is refused instead of crashing the process; one compiled on another host
loads with a warning that says the above.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import MissingFileError, OutputMismatchError, SplitattnError
from ..interface import option
from ..weights.checkpoint_io import atomic_write
from .cpu_features import cpu_features
from .frozen_model import StaticShapeModel

FORMAT = "splitattn-aot/1"
METADATA = "splitattn.json"
SAFETY = ("loading a package runs the compiled code (.so) inside it: load only packages you made or trust; "
          "a torch.export archive (splitattn quantize without --aot) holds no code")


class AotModel(StaticShapeModel):
    """A model compiled ahead of time, run by AOTInductor's C++ runner.

    Takes and returns float32 like the model it was compiled from; any batch size (padded or split
    to ``batch_size``, the one it was compiled for), images of the compiled size only. It has no
    parameters: the weights live inside the compiled library.
    """

    def __init__(self, runner: Any, info: dict[str, Any], aoti_files: Sequence[Any] = ()) -> None:
        super().__init__(info, "a compiled package", "compile it", runner)
        object.__setattr__(self, "_runner", runner)  # a C++ object, not a module
        object.__setattr__(self, "_aoti_files", list(aoti_files))  # what save_package writes again


def model_info(model: nn.Module) -> dict[str, Any]:
    """What a package records of the model it came from (classes and input settings)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return {"architecture": cfg.get("architecture"), "num_classes": getattr(model, "num_classes", 0),
            "in_chans": getattr(model, "in_chans", 3), "pretrained_cfg": plain(cfg)}


def static_shape_record(model: nn.Module, info: dict[str, Any] | None, shape: Sequence[int],
                        **fields: Any) -> dict[str, Any]:
    """What a model compiled for one input ``shape`` records: ``info`` (default: :func:`model_info`),
    ``fields``, the shape, and the shape's image size as its preprocessing input size, the only size
    it takes (eval and predict preprocess to what the model records)."""
    record = {**(info if info is not None else model_info(model)), **fields, "input_shape": list(shape)}
    record["pretrained_cfg"] = {**record.get("pretrained_cfg", {}), "input_size": list(shape[1:])}
    return record


def _build_info() -> dict[str, Any]:
    """Where a package can run: the torch it links against and the CPU features it may use."""
    return {"torch": torch.__version__, "machine": platform.machine(), "host": platform.node(),
            "cpu_features": [name for name, present in cpu_features().items() if present]}


def compile_package(model: nn.Module, example: torch.Tensor, info: dict[str, Any] | None = None) -> AotModel:
    """Compile ``model`` ahead of time for inputs shaped like ``example``; returns the loaded result.

    Args:
        model: an inference model (a deployed float model, or a converted int8 graph).
        example: one batch; its shape (batch size included) is the one compiled.
        info: metadata to record (default: classes and input settings read from ``model``).
    """
    example = example.detach().float().contiguous()
    record = static_shape_record(model, info, example.shape, **_build_info(), format=FORMAT)
    with torch.no_grad(), quiet_compiler():  # no_grad: freezing (constant weights) applies to inference only
        program = torch.export.export(model, (example,))  # no dynamic_shapes: every dimension static
        files = torch._inductor.aot_compile(program.module(), (example,),
                                            options={"aot_inductor.package": True, "freezing": True})
    with contextlib.ExitStack() as stack:  # package once to load it: the same loader users run
        import tempfile

        folder = stack.enter_context(tempfile.TemporaryDirectory())
        path = _package(Path(folder) / "model.pt2", files, record)
        return AotModel(_load_runner(path), record, files)


def _package(path: Path, files: Sequence[Any], record: dict[str, Any]) -> Path:
    from torch.export.pt2_archive._package import package_pt2

    missing = [f for f in files if isinstance(f, str) and f and not Path(f).exists()]
    if missing:
        raise MissingFileError(f"the compiled files of this package are gone ({missing[0]}: the inductor cache was "
                               "cleared?); compile the model again")
    with open(path, "wb") as handle:  # a file object: package_pt2 wants names ending in .pt2, temporaries do not
        package_pt2(handle, aoti_files={"model": list(files)}, extra_files={METADATA: json.dumps(record)})
    return path


def _load_runner(path: Path) -> Any:
    with quiet_compiler():
        return torch._inductor.aoti_load_package(str(path))


def save_package(model: AotModel, path: str | os.PathLike) -> Path:
    """Write ``model`` (from ``deploy(compile="aot")`` or ``save_quantized(aot=True)``) to ``path`` (``.pt2``).

    Args:
        model: a compiled package model; its ``info`` (edit ``info["pretrained_cfg"]`` to add class
            names) is written as the package's metadata.
        path: where to write it, atomically.
    """
    if not isinstance(model, AotModel):
        raise SplitattnError(f"save_package takes a model compiled with compile='aot', got {type(model).__name__}")
    if not model._aoti_files:
        raise SplitattnError("this package was loaded from a file, which is the saved package: copy that file")
    path = Path(path)
    if path.suffix != ".pt2":
        raise SplitattnError(f"a compiled package is saved as a .pt2 file, got {str(path)!r}")

    def write(temporary: str) -> None:
        _package(Path(temporary), model._aoti_files, {**model.info, "format": FORMAT})

    atomic_write(path, write)
    return path


def read_package_info(path: str | os.PathLike) -> dict[str, Any] | None:
    """The metadata of a ``.pt2`` file if it is one of our compiled packages, else None.

    Read from the zip alone: nothing in the package is loaded or run.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(f"/extra/{METADATA}") or n == f"extra/{METADATA}"]
            has_library = any(n.endswith(".so") and "/aotinductor/" in n for n in archive.namelist())
            if not names or not has_library:
                return None
            info = json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError):
        return None
    return info if isinstance(info, dict) and info.get("format") == FORMAT else None


def _check_runs_here(path: Path, info: dict[str, Any]) -> None:
    """Refuse a package this process cannot run, before its library is loaded."""
    if info.get("torch") != torch.__version__:
        raise SplitattnError(f"{path} was compiled with torch {info.get('torch')}, this is torch {torch.__version__}: "
                             "a package runs only with the torch that compiled it; compile it again here")
    here = {name for name, present in cpu_features().items() if present}
    lacking = sorted(set(info.get("cpu_features", [])) - here)
    if info.get("machine") != platform.machine() or lacking:
        raise SplitattnError(f"{path} was compiled for a {info.get('machine')} CPU with {', '.join(lacking) or '-'}, "
                             f"which this {platform.machine()} CPU lacks; compile it again here")


def load_package(path: str | os.PathLike) -> AotModel:
    """A package written by :func:`save_package`, ready to run: nothing is compiled.

    Loading runs the package's compiled code: load only packages you made or trust (a
    ``torch.export`` archive holds no code and is safe to take from elsewhere).

    Args:
        path: the ``.pt2`` package.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no compiled package at {path}")
    info = read_package_info(path)
    if info is None:
        raise SplitattnError(f"{path} is not one of splitattn's compiled packages (no {METADATA} of format "
                             f"{FORMAT!r} beside a compiled library); {SAFETY}")
    _check_runs_here(path, info)
    if info.get("host") != platform.node():
        warnings.warn(f"{path} was compiled on another machine ({info.get('host')!r}); {SAFETY}", UserWarning,
                      stacklevel=2)
    try:
        runner = _load_runner(path)
    except Exception as error:  # a damaged package: the C++ loader's message
        raise SplitattnError(f"{path} could not be loaded as a compiled package: {error}") from None
    return AotModel(runner, info)


def check_agreement(model: nn.Module, reference: nn.Module, batches: Sequence[torch.Tensor],
                    min_agreement: float, what: str = "the compiled package") -> float:
    """Top-1 agreement of ``model`` with ``reference`` over ``batches``; raises below ``min_agreement``.

    Args:
        model: what is about to be saved (the loaded package).
        reference: what it must agree with (the float model).
        batches: float32 image batches (the calibration batches).
        min_agreement: the fraction of images (0 to 1) whose top-1 class must agree.
        what: how the refusal names ``model``.
    """
    same = total = 0
    with torch.no_grad():
        for batch in batches:
            same += int((model(batch).argmax(1) == reference(batch).argmax(1)).sum())
            total += batch.shape[0]
    agreement = same / max(total, 1)
    if agreement < min_agreement:
        raise OutputMismatchError(f"{what} agrees with the float model on {agreement:.1%} of "
                                  f"{total} images' top-1, below {min_agreement:.0%}; not saved "
                                  f"({option('min_agreement')} sets the threshold)")
    return agreement


def plain(value: Any) -> Any:
    """``value`` with tuples as lists and only JSON types, for a package's metadata."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


# What compiling prints on every compile, none of it about the user's model: a deprecation inside
# torchao's registration, inductor's own tensor-copy notice and its CUDA search.
_COMPILER_NOTICES = ("To copy construct from a tensor",)
_COMPILER_LOGGERS = ("torch.utils._pytree", "torch.utils.cpp_extension")


@contextlib.contextmanager
def quiet_compiler() -> Iterator[None]:
    """Silence the compiler's own notices (process-wide filters, so only around a compile or load)."""
    loggers = [logging.getLogger(name) for name in _COMPILER_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for message in _COMPILER_NOTICES:
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)

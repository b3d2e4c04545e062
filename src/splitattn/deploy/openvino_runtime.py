"""The few OpenVINO and NNCF calls the package makes, each made once here with the care it needs.

Every compile for the CPU plugin and every NNCF calibration (which compiles too) keeps the
thread's signal stack as it was (:mod:`.signal_stack`: the plugin would leave one that dies with
the compiled model, and a later signal would kill the process). NNCF's progress bars ignore its log
level and go to stdout, so a library call that quantizes would print; they are swallowed here.

``openvino`` and ``nncf`` are optional (``pip install 'splitattn[openvino]'``) and imported inside
the functions, so that importing this module costs nothing without them.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from ..errors import SplitattnError
from ..optional import require
from .signal_stack import preserved_signal_stack


def require_openvino(purpose: str = "OpenVINO", module: str = "openvino") -> ModuleType:
    """``openvino`` (or ``nncf``) imported, or an error naming ``purpose`` and the extra that installs it."""
    return require(module, purpose, "openvino")


def compile_cpu(model: Any, config: dict[str, object]) -> Any:
    """``ov.Core().compile_model(model, "CPU", config)``, keeping the thread's signal stack as it was.

    Args:
        model: an ``ov.Model`` or the path of an IR.
        config: the CPU plugin's properties.
    """
    ov = require_openvino()
    with preserved_signal_stack():
        return ov.Core().compile_model(str(model) if isinstance(model, Path) else model, "CPU", config)


def compiled_precision(compiled: Any) -> str:
    """The inference precision a compiled model really runs its float ops at, in OpenVINO's words
    (``"f32"``, ``"bf16"``): the plugin answers with what it chose, not with the hint it was given."""
    return str(compiled.get_property("INFERENCE_PRECISION_HINT").to_string())


def single_images(batches: Iterable[torch.Tensor]) -> list[np.ndarray]:
    """Calibration batches as one-image arrays: NNCF counts ``subset_size`` in items and collects
    statistics per item, so a batch would count as one image and be reduced as one."""
    images = []
    for batch in batches:
        if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
            raise SplitattnError(f"calibration batches must be float tensors (N, C, H, W), got "
                                 f"{getattr(batch, 'shape', type(batch).__name__)}")
        images += [np.ascontiguousarray(x.unsqueeze(0).float().numpy()) for x in batch.detach().cpu()]
    if not images:
        raise SplitattnError("int8 calibration got no images: pass an iterable of (N, C, H, W) batches")
    return images


def nncf_quantize(ov_model: Any, items: Sequence[np.ndarray], **options: Any) -> Any:
    """``nncf.quantize(ov_model, nncf.Dataset(items), **options)``, quietly and keeping the signal stack.

    Args:
        ov_model: the float ``ov.Model``.
        items: the calibration inputs, one per statistics item.
        options: NNCF's own (``subset_size``, ``ignored_scope``...).
    """
    nncf = require_openvino("int8 with OpenVINO", "nncf")
    nncf.set_log_level(logging.ERROR)  # its INFO lines would bury a command's one-line report
    with contextlib.redirect_stdout(io.StringIO()), preserved_signal_stack():  # it compiles to calibrate
        return nncf.quantize(ov_model, nncf.Dataset(list(items)), **options)


def run_compiled(compiled: Any, x: torch.Tensor) -> torch.Tensor:
    """Run a compiled OpenVINO model on a float tensor; returns a torch tensor of its first output."""
    result = compiled(np.ascontiguousarray(x.detach().cpu().float().numpy()))
    return torch.from_numpy(np.array(result[0], copy=True))

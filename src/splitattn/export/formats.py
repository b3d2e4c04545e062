"""The table of export formats, and the one check of what an export was asked for.

``export_checked``, ``splitattn export`` (its ``--format`` choices, default file names and early
refusals) and the benchmark's engine candidates all read :data:`FORMATS`; adding a format is one
:class:`~.format.ExportFormat` in its own file and one entry here (or ``FORMATS[name] = ...`` at
run time, as ``tests/test_extensibility.py`` does). The refusals are worded through
:func:`splitattn.interface.option`, so the command line reads ``--format onnx`` where Python
reads ``fmt=onnx``, and the CLI does not need its own copy.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import SplitattnError, one_of
from ..interface import option
from .format import PRECISIONS, ExportFormat
from .onnx import ONNX
from .openvino import OPENVINO
from .torchscript import TORCHSCRIPT

FORMATS: dict[str, ExportFormat] = {f.name: f for f in (ONNX, TORCHSCRIPT, OPENVINO)}


def format_for(fmt: str) -> ExportFormat:
    """The :class:`ExportFormat` named ``fmt``.

    Args:
        fmt: a key of :data:`FORMATS`.

    Raises:
        SplitattnError: an unknown name, naming the known ones.
    """
    return one_of(FORMATS, fmt, "format")


def check_request(fmt: str, precision: str, calibrated: bool, options: Mapping[str, object]) -> ExportFormat:
    """Refuse, before anything is built or read, an export that cannot work; returns the format.

    Args:
        fmt: a key of :data:`FORMATS`.
        precision: a key of :data:`~.format.PRECISIONS` that ``fmt`` supports.
        calibrated: whether calibration images were given.
        options: the format's own options (``exporter`` for ONNX), each checked against the values
            the format declares.

    Raises:
        SplitattnError: naming the option that was wrong and what it takes instead.
    """
    export_format = format_for(fmt)
    if precision not in PRECISIONS:
        raise SplitattnError(f"precision must be one of {tuple(PRECISIONS)} ({option('precision')}), got {precision!r}")
    if precision not in export_format.precisions:
        supported = "; ".join(f"{f.name}: {', '.join(f.precisions)}" for f in FORMATS.values())
        raise SplitattnError(f"{option('fmt', fmt)} does not support {option('precision', precision)} "
                             f"(supported: {supported})")
    wanted = PRECISIONS[precision]
    if wanted.needs_calibration and not calibrated:
        raise SplitattnError(f"{option('precision', precision)} needs {option('calibration')} images: "
                             "the quantization ranges are set on real inputs")
    if calibrated and not wanted.takes_calibration:
        users = sorted((p for p in PRECISIONS.values() if p.takes_calibration), key=lambda p: not p.needs_calibration)
        used_by = " and ".join(option("precision", p.name) for p in users)
        raise SplitattnError(f"{option('calibration')} is used by {used_by}; "
                             f"{option('precision', precision)} takes none")
    for name, value in options.items():
        allowed = export_format.options.get(name)
        if allowed is None:
            having = [f.name for f in FORMATS.values() if name in f.options]
            raise SplitattnError(f"{option(name)} is an option of {', '.join(having) or 'no format'}, not of "
                                 f"{option('fmt', fmt)} (which takes {', '.join(export_format.options) or 'none'})")
        if value not in allowed:
            raise SplitattnError(f"{option(name)} must be one of {allowed} for {fmt}, got {value!r}")
    return export_format

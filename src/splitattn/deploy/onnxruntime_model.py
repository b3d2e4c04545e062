"""onnxruntime as a deploy backend: our deployed network run by onnxruntime's CPU execution
provider, checked as every deploy is.

Why a third engine: on the CPU measured (AVX-512 EPYC, two threads, ``docs/benchmarks.md``)
onnxruntime runs resnest50's float32 at batch 16 faster than OpenVINO does, on our graph and on
timm's (the convolutions, which are almost all of the time, are faster there), while OpenVINO
wins at batch 1 and on the other families. ``deploy(compile="onnxruntime")`` hands the user that
engine under the same contract as our own paths: outputs checked against eval mode within
``deploy``'s float32 tolerance.

What is handed over is the deployed network (BatchNorms folded, training modules gone, attention
MLPs as matrix products), exported at the example's static shape, so that onnxruntime folds every
shape computation when it builds the session, and run with the setup its documentation gives for
one request at a time: all graph optimizations, the process's thread count (torch's) and no
spinning between calls (the pool's busy-waiting would take the cores from the caller's own work).
Other batch sizes are padded or split to the compiled one (:class:`FixedBatch`). Float32 only:
onnxruntime's CPU provider has no bf16 convolutions, and our int8 engines are ``quantize``'s.

Saved (``save_onnxruntime``) it is one ``.onnx`` file with our metadata (classes, input settings)
in the model's ``metadata_props``. Like an OpenVINO IR it holds no code: a graph and its weights.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import MissingFileError, SplitattnError
from ..weights.checkpoint_io import atomic_write
from .aot import static_shape_record
from .frozen_model import StaticShapeModel
from .onnx_runtime import export_onnx, onnx_session, require_onnxruntime, run_onnx

FORMAT = "splitattn-onnxruntime/1"
METADATA_KEY = "splitattn"


class OnnxRuntimeModel(StaticShapeModel):
    """A network run by an onnxruntime session, as a module that takes and returns float32 tensors.

    Any batch size (padded or split to ``batch_size``, the one it was exported for), images of
    the exported size only. It has no parameters: the weights live in the session.

    Args:
        serialized: the ONNX model (``ModelProto`` bytes) at the static shape ``info["input_shape"]``,
            ``info`` already in its metadata.
        info: the record it is saved with (classes, input settings).
        threads: intra-op threads (default: torch's, so it shares the cores as torch would).
        session: the session already made from ``serialized`` (the loader's), instead of a new one.
    """

    def __init__(self, serialized: bytes, info: dict[str, Any], threads: int | None = None,
                 session: Any = None) -> None:
        session = session if session is not None else onnx_session(serialized, threads)
        super().__init__(info, "an onnxruntime model", "deploy it", lambda x: run_onnx(session, x))
        object.__setattr__(self, "_serialized", serialized)  # bytes and an onnxruntime session, not modules
        object.__setattr__(self, "_session", session)

    @property
    def threads(self) -> int:
        """The session's intra-op thread count."""
        return int(self._session.get_session_options().intra_op_num_threads)


def _with_metadata(onnx_file: Path, info: dict[str, Any]) -> bytes:
    """The ONNX file's model with ``info`` as JSON under :data:`METADATA_KEY`, serialized."""
    onnx = require_onnxruntime("compile='onnxruntime'", "onnx")
    proto = onnx.load(str(onnx_file))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps({**info, "format": FORMAT})
    return proto.SerializeToString()


def compile_onnxruntime(model: nn.Module, example: torch.Tensor, info: dict[str, Any] | None = None,
                        threads: int | None = None) -> OnnxRuntimeModel:
    """``model`` (a deployed float32 network) exported at ``example``'s shape and run by onnxruntime.

    Args:
        model: the network, float32, on the CPU.
        example: one batch; its shape (batch size included) is the one exported.
        info: metadata to record (default: classes and input settings read from ``model``).
        threads: intra-op threads (default: torch's).
    """
    require_onnxruntime("compile='onnxruntime'")
    record = static_shape_record(model, info, example.shape, format=FORMAT, precision="fp32")
    with tempfile.TemporaryDirectory(prefix="splitattn-onnxruntime-") as scratch:
        # The TorchScript exporter: 2 s for a ResNeSt-50 on two cores against 6 s through torch.export,
        # and onnxruntime ran the two files within 1% of each other (docs/benchmarks.md).
        onnx_file = export_onnx(model, Path(scratch) / "model.onnx", example.detach().float().cpu(),
                                exporter="legacy", dynamic_batch=False)
        serialized = _with_metadata(onnx_file, record)
    return OnnxRuntimeModel(serialized, record, threads)


def save_onnxruntime(model: OnnxRuntimeModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (one ``.onnx`` file, our metadata inside), atomically.

    Args:
        model: what ``deploy(compile="onnxruntime")`` returned. Its ``info`` as it was made is
            what is written; the file is any onnxruntime's to run (input ``input``, output ``output``).
        path: the ``.onnx`` file to write.
    """
    if not isinstance(model, OnnxRuntimeModel):
        raise SplitattnError(f"save_onnxruntime takes a model of deploy(compile='onnxruntime'), "
                             f"got {type(model).__name__}")
    path = Path(path)
    if path.suffix != ".onnx":
        raise SplitattnError(f"an onnxruntime model is saved as NAME.onnx, got {str(path)!r}")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(model._serialized))
    return path


def read_onnxruntime_info(session: Any) -> dict[str, Any] | None:
    """The metadata ``save_onnxruntime`` wrote, read from an onnxruntime session, or None if it has none."""
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    try:
        info = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        return None
    return info if isinstance(info, dict) and info.get("format") == FORMAT else None


def load_onnxruntime(path: str | os.PathLike, threads: int | None = None) -> OnnxRuntimeModel:
    """A model written by :func:`save_onnxruntime`, ready to run.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: torch's).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no onnxruntime model at {path}")
    serialized = path.read_bytes()
    try:
        session = onnx_session(serialized, threads)
    except Exception as error:  # not ONNX, or a damaged file: onnxruntime's message
        raise SplitattnError(f"{path} could not be read as an ONNX model: {' '.join(str(error).split())[:300]}") \
            from None
    info = read_onnxruntime_info(session)
    if info is None:
        raise SplitattnError(f"{path} is an ONNX model but not one of splitattn's deployed models (no "
                             f"{METADATA_KEY!r} metadata of format {FORMAT!r}: classes and input settings unknown); "
                             "run it with onnxruntime directly, or write it with splitattn.deploy.save_onnxruntime")
    return OnnxRuntimeModel(serialized, info, session=session)

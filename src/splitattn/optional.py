"""Optional packages (webdataset, datasets, onnx, openvino ...), imported by the code that needs them, on use.

The package itself imports none of them, so that ``pip install splitattn`` stays small; a feature
that needs one says which extra installs it, in the same words wherever it is met.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingPackageError


def require(module: str, purpose: str, extra: str, error: type[Exception] = MissingPackageError) -> ModuleType:
    """``module`` imported, or ``error`` naming what needs it and the install command.

    Args:
        module: the import name (``webdataset``, ``datasets``, ``openvino.runtime``).
        purpose: what the user asked for, for the message (``--data 'shards/train-{0..9}.tar'``).
        extra: the package extra that installs it (``webdataset``, ``hf``, ``openvino``).
        error: the exception raised when it is missing (a data source's is a ``DataError``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise error(f"{purpose} needs the optional package {module.split('.')[0]!r}: "
                    f"pip install 'splitattn[{extra}]'") from missing

"""Optional packages of the exporters, imported when an export needs them and never before."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, purpose: str, extra: str) -> ModuleType:
    """``module`` imported, or a RuntimeError naming the package ``purpose`` needs and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise RuntimeError(f"{purpose} needs the optional package {module.split('.')[0]!r}: "
                           f"pip install 'splitattn[{extra}]'") from error

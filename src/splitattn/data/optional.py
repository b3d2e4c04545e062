"""Optional data libraries (webdataset, datasets), imported by the source that needs them, on use."""

from __future__ import annotations

from types import ModuleType

from .. import optional
from ..errors import MissingPackageError
from .errors import DataError


class MissingExtra(DataError, MissingPackageError):
    """A data source needs a package that is not installed; the message names the extra to install."""


def require(module: str, purpose: str, extra: str) -> ModuleType:
    """``module`` imported, or a :class:`MissingExtra` naming what needs it and the install command.

    Args:
        module: the import name (``webdataset``, ``datasets``).
        purpose: what the user asked for, for the message (``--data 'shards/train-{0..9}.tar'``).
        extra: the package extra that installs it (``webdataset``, ``hf``).
    """
    return optional.require(module, purpose, extra, MissingExtra)

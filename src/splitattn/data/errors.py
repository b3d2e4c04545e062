"""The one error of the data layer: a data set that cannot be read as asked."""

from __future__ import annotations

from ..errors import SplitattnError


class DataError(SplitattnError):
    """A data set that cannot be trained or evaluated on; the message names it and what was expected."""

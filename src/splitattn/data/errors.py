"""The one error of the data layer: a data set that cannot be read as asked."""

from __future__ import annotations


class DataError(ValueError):
    """A data set that cannot be trained or evaluated on; the message names it and what was expected."""

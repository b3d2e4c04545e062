"""The package's own errors: what the user asked for cannot be done, and the message says why.

Every error splitattn raises on bad input (an option out of range, a data set that cannot be read,
a configuration that does not parse, weights that cannot be fetched or loaded, an export whose
check fails) is a :class:`SplitattnError`. That is the line the ``splitattn`` command draws: these
are printed as one line on stderr with exit status 2, since the message is all the user needs;
anything else (a ``RuntimeError`` from PyTorch, a bug in splitattn) keeps its traceback, since
hiding it would hide the bug. :class:`SplitattnError` is a ``ValueError`` so that callers who wrote
``except ValueError`` before these types existed keep working; the few subclasses that are also a
``TypeError``, ``FileNotFoundError`` or ``RuntimeError`` keep the type those errors had.

Layer-specific errors (``DataError``, ``CheckpointError``, ``WeightsUnavailableError`` ...) derive
from these and live with the code that raises them. An error that is the package's to report but
not bad input (``training.loop.TrainingDiverged``: valid settings, a run that went wrong) names its
own ``exit_status`` from :data:`EXIT_STATUSES`, the one table ``splitattn --help`` lists. No
package imports: every layer may use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ExitStatus:
    """One exit status of the ``splitattn`` command and what it means, as ``--help`` lists it."""

    code: int
    meaning: str


OK = ExitStatus(0, "success")
FAILURE = ExitStatus(1, "failure: the command ran but could not do all it was asked (e.g. predict found "
                        "unreadable images), or an unexpected error (printed with its traceback)")
BAD_INPUT = ExitStatus(2, "bad input: a wrong option, data, configuration, weights, download or a failed "
                          "export check (one line on stderr)")
DIVERGED = ExitStatus(3, "training diverged: the loss or the weights became NaN or infinite")
EXIT_STATUSES: tuple[ExitStatus, ...] = (OK, FAILURE, BAD_INPUT, DIVERGED)


def exit_status_of(error: BaseException) -> ExitStatus | None:
    """The exit status an error's class declares (``exit_status``), or None for errors not the package's.

    Args:
        error: the exception that ended a command.
    """
    status = getattr(type(error), "exit_status", None)
    return status if isinstance(status, ExitStatus) else None


class SplitattnError(ValueError):
    """Bad input to splitattn; the message names what was wrong and what was expected.

    ``exit_status`` is what the ``splitattn`` command exits with when this error ends a command.
    """

    exit_status: ClassVar[ExitStatus] = BAD_INPUT


class ConfigError(SplitattnError):
    """A training configuration (config file, preset, ``KEY=VALUE`` override) that cannot be read or run."""


class ArgumentTypeError(SplitattnError, TypeError):
    """An argument of a kind the function does not take (e.g. ``attn`` that is not an attention spec)."""


class MissingFileError(SplitattnError, FileNotFoundError):
    """A file or folder the user named that does not exist."""


class MissingPackageError(SplitattnError, RuntimeError):
    """A feature needs an optional package that is not installed; the message names the extra to install."""


class OutputMismatchError(SplitattnError):
    """An exported or deployed model whose outputs differ from PyTorch's beyond the tolerance checked."""


def one_of(table: Mapping[Any, T], key: object, what: str) -> T:
    """``table[key]``, or a :class:`SplitattnError` naming the close keys and all of them.

    Args:
        table: the records a name chooses among (formats, compile modes ...).
        key: the name given.
        what: how messages name the choice (``format``, ``compile``).
    """
    try:
        return table[key]
    except (KeyError, TypeError):  # TypeError: an unhashable key (a list given for a name)
        pass
    close = difflib.get_close_matches(str(key), [k for k in table if isinstance(k, str)], n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise SplitattnError(f"{what} must be one of {tuple(table)}, got {key!r}.{hint}")

"""Errors name options the way the user gave them: ``pretrained=PATH`` in Python, ``--pretrained PATH``
on the command line.

A message that tells the user what to pass writes ``option("pretrained", "PATH")``; the ``splitattn``
command runs each sub-command inside :func:`command_line`, with that command's own flag names
where they differ from the Python arguments (``pretrained`` is ``--checkpoint`` for ``predict``).
Nothing else in the package knows whether it runs under the CLI. No imports: every layer may use it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping

# None in Python; on the command line, the running command's flags for Python argument names.
_FLAGS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("splitattn_flags", default=None)


def option(name: str, value: str | None = None) -> str:
    """How the user passes the argument ``name`` (with an example ``value``) in the interface in use."""
    flags = _FLAGS.get()
    if flags is None:
        return f"{name}={value}" if value else name
    flag = flags.get(name, "--" + name.replace("_", "-"))
    return f"{flag} {value}" if value else flag


def switch(name: str) -> str:
    """How the user turns on the boolean argument ``name``: ``name=True``, or ``--name``."""
    return option(name) if on_command_line() else f"{name}=True"


def on_command_line() -> bool:
    return _FLAGS.get() is not None


@contextlib.contextmanager
def command_line(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Messages raised inside name options as flags; ``flags`` maps argument names to this command's flags."""
    token = _FLAGS.set(dict(flags or {}))
    try:
        yield
    finally:
        _FLAGS.reset(token)

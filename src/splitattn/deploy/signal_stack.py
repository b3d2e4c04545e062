"""Keep the process's alternate signal stack where it was across OpenVINO calls.

OpenVINO's CPU plugin (2026.4 on Linux) installs a signal stack of its own (``sigaltstack``) on
the calling thread whenever it creates a compiled model, and frees it with the model. With two
compiled models alive at once, freeing them in the order they were made leaves the thread's
signal stack pointing at unmapped memory. Python installs its signal handlers to run on that
stack (``SA_ONSTACK``), so the next signal with a handler (SIGCHLD of a finished subprocess,
SIGTERM, Ctrl-C, a data loader's) kills the process with SIGSEGV, long after OpenVINO was
used and far from it: the kernel cannot write the handler's frame, so no traceback says where.
Found as a test worker that died in a later, unrelated test; ``tests/test_export_engines.py``
reproduces it in a few lines. Restoring the stack that was installed before each call keeps the
thread's signal stack one that lives as long as the process (Python's faulthandler's, or none);
OpenVINO's own handlers then run on that stack, which is what they did before it changed it.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterator


class _StackT(ctypes.Structure):
    """``stack_t`` of <signal.h> on Linux: pointer, flags, size."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None  # the plugin's behaviour was seen on Linux; elsewhere there is nothing to undo
    libc = ctypes.CDLL(None, use_errno=True)
    return libc if hasattr(libc, "sigaltstack") else None


def current_signal_stack() -> tuple[int | None, int]:
    """The calling thread's alternate signal stack: (address or None, size); (None, 0) when none is set."""
    libc = _libc()
    if libc is None:
        return None, 0
    old = _StackT()
    libc.sigaltstack(None, ctypes.byref(old))
    return old.ss_sp, old.ss_size


@contextlib.contextmanager
def preserved_signal_stack() -> Iterator[None]:
    """Run the body (an OpenVINO call that may compile a model), then put back the signal stack
    that was installed before it."""
    libc = _libc()
    if libc is None:
        yield
        return
    before = _StackT()
    libc.sigaltstack(None, ctypes.byref(before))
    try:
        yield
    finally:
        if before.ss_sp is None:
            before.ss_flags, before.ss_size = 2, 0  # SS_DISABLE: there was none
        else:
            before.ss_flags = 0
        libc.sigaltstack(ctypes.byref(before), None)

"""Fetching weight files into the cache, verified by hash, with nothing left behind on failure."""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import torch

from ..errors import SplitattnError
from ..interface import option
from ..models.published import hash_from_filename
from .checkpoint_io import CheckpointError, atomic_write

CACHE_ENV = "SPLITATTN_CACHE"
TIMEOUT_ENV = "SPLITATTN_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 1 << 20


class WeightsUnavailableError(SplitattnError, RuntimeError):
    """The weights could not be fetched; the message says where to put the file by hand."""


class HashMismatchError(CheckpointError):
    """A file's sha256 does not start with the expected digits."""


def cache_dir() -> Path:
    """``$SPLITATTN_CACHE``, else torch hub's checkpoint directory (``$TORCH_HOME/hub/checkpoints``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_timeout() -> float:
    """Seconds to wait for a host to answer (``$SPLITATTN_DOWNLOAD_TIMEOUT``, default 30)."""
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise SplitattnError(f"${TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None


def verify_sha256(path: str | os.PathLike, expected: str | None, label: str | None = None) -> str:
    """Check that the file's sha256 starts with ``expected``; returns the full digest.

    ``label`` names the file in the error when ``path`` is a temporary name (a download's URL).
    """
    actual = sha256_of(path)
    if expected and not actual.startswith(expected.lower()):
        raise HashMismatchError(
            f"hash mismatch for {label or str(path)!r}: expected sha256 starting with {expected.lower()}, "
            f"got {actual}. The file is corrupted or is not the published one; it was not loaded."
        )
    return actual


def is_url(value: str) -> bool:
    return urllib.parse.urlparse(str(value)).scheme in ("http", "https", "file", "ftp")


def local_path(location: str) -> Path:
    """A path or ``file://`` URL as a local path: such files are read where they are, never copied."""
    if urllib.parse.urlparse(location).scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(location).path))
    return Path(location).expanduser()


def check_named_hash(path: Path) -> None:
    """A file named like torch hub's downloads (``name-<sha256 prefix>.pth``) must have that hash."""
    expected = hash_from_filename(path.name)
    if expected is None or not path.is_file():
        return
    try:
        verify_sha256(path, expected)
    except HashMismatchError as error:
        raise HashMismatchError(
            f"{error} Its name ends in -{expected}, which torch hub's naming (used by the published files) "
            "reads as the first digits of its sha256: rename the file if that part is not a hash."
        ) from None


def download(url: str, sha256: str | None = None, filename: str | None = None, progress: bool = True) -> Path:
    """Return the cached copy of ``url``, downloading it first if needed.

    The file is streamed to a temporary name in the cache directory and renamed into place only
    after its hash checks out, so an interrupted or rejected download leaves nothing in the cache.
    ``sha256`` may be a prefix; without one, a hash prefix in the file name is used (torch hub's
    convention). A cached copy whose hash does not match is replaced by a fresh download.
    Failures raise :class:`WeightsUnavailableError` (cannot fetch) or :class:`HashMismatchError`.
    """
    filename = filename or Path(urllib.parse.urlparse(url).path).name
    if not filename:
        raise SplitattnError(f"cannot derive a file name from URL {url!r}; pass filename=")
    expected = sha256 or hash_from_filename(filename)
    target = cache_dir() / filename
    if target.is_file():
        try:
            verify_sha256(target, expected)
            return target
        except HashMismatchError as error:
            warnings.warn(f"{error} Downloading it again.", stacklevel=2)
    timeout = download_timeout()
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise WeightsUnavailableError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            reason = f"no answer within {timeout:g} s"
        raise WeightsUnavailableError(f"{url}: could not connect ({reason})") from None

    def fetch(partial: str) -> None:
        with response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = _progress_bar(total, filename) if progress else None
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
            if total is not None and out.tell() != total:
                raise WeightsUnavailableError(f"{url}: the connection closed after {out.tell()} of {total} bytes")
        verify_sha256(partial, expected, url)  # raising here leaves nothing in the cache

    try:
        atomic_write(target, fetch)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise WeightsUnavailableError(f"{url}: the download failed part way ({error}); nothing was cached") from None
    return target


def offline_advice(filename: str) -> str:
    """Where to put a file by hand when it cannot be downloaded."""
    return (f"put the file at {cache_dir() / filename} (the weights cache; set ${CACHE_ENV} or $TORCH_HOME to "
            f"move it), or load a file you have with {option('pretrained', 'PATH')}")


def _progress_bar(total: int | None, name: str):
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety, not a requirement
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False)

"""Fetching weight files into the cache, verified by hash, with nothing left behind on failure."""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import torch

from .checkpoint_io import CheckpointError, atomic_write

CACHE_ENV = "SPLITATTN_CACHE"
# torch.hub's convention: "name-<first hex digits of the sha256>.ext"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")
_CHUNK = 1 << 20


class WeightsUnavailableError(RuntimeError):
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


def hash_from_filename(name: str) -> str | None:
    """The sha256 prefix a torch-hub style filename carries (``resnest50-528c19ca.pth``), if any."""
    match = _HASH_IN_NAME.search(Path(name).name)
    return match.group(1) if match else None


def verify_sha256(path: str | os.PathLike, expected: str | None) -> str:
    """Check that the file's sha256 starts with ``expected``; returns the full digest."""
    actual = sha256_of(path)
    if expected and not actual.startswith(expected.lower()):
        raise HashMismatchError(
            f"hash mismatch for {str(path)!r}: expected sha256 starting with {expected.lower()}, "
            f"got {actual}. The file is corrupted or is not the published one; it was not loaded."
        )
    return actual


def is_url(value: str) -> bool:
    return urllib.parse.urlparse(str(value)).scheme in ("http", "https", "file", "ftp")


def download(url: str, sha256: str | None = None, filename: str | None = None, progress: bool = True) -> Path:
    """Return the cached copy of ``url``, downloading it first if needed.

    The file is streamed to a temporary name in the cache directory and renamed into place only
    after its hash checks out, so an interrupted or rejected download leaves nothing in the cache.
    ``sha256`` may be a prefix; without one, a hash prefix in the file name is used (torch hub's
    convention).
    """
    filename = filename or Path(urllib.parse.urlparse(url).path).name
    if not filename:
        raise ValueError(f"cannot derive a file name from URL {url!r}; pass filename=")
    expected = sha256 or hash_from_filename(filename)
    directory = cache_dir()
    target = directory / filename
    if target.is_file():
        verify_sha256(target, expected)
        return target
    try:
        response = urllib.request.urlopen(url, timeout=30)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise WeightsUnavailableError(
            f"could not download {url} ({reason}). If this machine is offline, fetch the file elsewhere and "
            f"put it at {target} (the cache directory; set ${CACHE_ENV} or $TORCH_HOME to move it), "
            "or pass pretrained='/path/to/file'."
        ) from None

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
        verify_sha256(partial, expected)  # raising here leaves nothing in the cache

    try:
        atomic_write(target, fetch)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise WeightsUnavailableError(f"download of {url} failed part way ({error}); nothing was cached") from None
    return target


def _progress_bar(total: int | None, name: str):
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety, not a requirement
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False)

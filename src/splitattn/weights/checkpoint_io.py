"""Reading and writing weight files safely: never unpickle code, never leave half a file behind."""

from __future__ import annotations

import argparse
import os
import pickle
import secrets
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors

from ..errors import SplitattnError

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".tar", ".ckpt")
SAFETENSORS_SUFFIX = ".safetensors"


class CheckpointError(SplitattnError):
    """A weight file that cannot (or must not) be loaded; the message names the file and why."""


def _is_safetensors(path: Path) -> bool:
    if path.suffix == SAFETENSORS_SUFFIX:
        return True
    # A safetensors file starts with an 8-byte header length and a JSON header; torch files are
    # zip archives ("PK") or legacy pickles (0x80).
    with path.open("rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def load_checkpoint_file(path: str | os.PathLike) -> dict[str, object]:
    """Load a ``.pth``/``.pt``/``.safetensors`` file into a dict, without running any code in it.

    Torch files go through ``torch.load(weights_only=True)``: tensors, containers and numbers
    only. ``argparse.Namespace`` (which training scripts such as timm's store next to the weights)
    is also allowed, since rebuilding one only sets attributes. Anything else is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file {str(path)!r} is empty (0 bytes): the download or copy failed")
    if _is_safetensors(path):
        try:
            return dict(load_safetensors(str(path), device="cpu"))
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(
                f"checkpoint file {str(path)!r} is not a readable safetensors file (truncated or corrupted?): {error}"
            ) from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"refusing to load {str(path)!r}: it contains pickled Python objects other than tensors, which "
            f"could run code when loaded ({first_line}). Re-save just the state dict, or convert it to "
            "safetensors, on a machine where you trust the file."
        ) from None
    # Bytes that are no torch file at all send torch's legacy unpickler into IndexError or KeyError.
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint file {str(path)!r} could not be read; it is probably truncated or corrupted ({first_line})"
        ) from None
    if not isinstance(loaded, Mapping):
        raise CheckpointError(
            f"checkpoint file {str(path)!r} holds a {type(loaded).__name__}, not a state dict (a dict of tensors)"
        )
    return dict(loaded)


def atomic_write(path: Path, write) -> None:
    """Write via a temporary file in the same directory, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: it creates the file 0600. Created with 0666 the umask applies, so the file
    # gets the usual permissions (0644 under umask 022); O_EXCL still refuses a name that exists.
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.partial")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temporary file beside {str(path)!r}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Save tensors as ``.safetensors`` or a torch file (``.pth``/``.pt``), chosen by the suffix."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    if path.suffix == SAFETENSORS_SUFFIX:
        # safetensors refuses tensors that share memory; the copies cost nothing at this size.
        tensors = {k: v.clone() for k, v in tensors.items()}
        atomic_write(path, lambda tmp: save_safetensors(tensors, tmp))
    elif path.suffix in TORCH_SUFFIXES:
        atomic_write(path, lambda tmp: torch.save(tensors, tmp))
    else:
        raise CheckpointError(
            f"cannot tell the format of {str(path)!r}: use a {SAFETENSORS_SUFFIX} or {'/'.join(TORCH_SUFFIXES)} suffix"
        )
    return path

"""An image folder written as WebDataset shards with their info file (``splitattn write-shards``).

How a user turns the folders they have into the shards that many-machine training reads, and
how the README and the tests get a shard set without downloading one. Each split folder
(``train/``, ``val/``) becomes ``SPLIT-000000.tar``, ... of ``per_shard`` samples in a shuffled
order (shards of a class-sorted folder would each hold one class, which a shuffle buffer cannot
mix), and ``_info.json`` records the shards' sample counts and the class names.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .decode import DECODE_ERRORS, load_rgb
from .errors import DataError
from .folder import ImageFolderDataset
from .optional import require
from .shard_info import INFO_FILE, write_info

KEPT_FORMATS = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp"}  # copied as they are


@dataclass(frozen=True)
class WrittenSplit:
    """One split's shards: their files and sample counts."""

    name: str
    files: list[str]
    lengths: list[int]


def write_shards(root: str | os.PathLike, out: str | os.PathLike, per_shard: int = 1000,
                 splits: tuple[str, ...] = ("train", "val"), seed: int = 0) -> list[WrittenSplit]:
    """Write ``root/SPLIT/<class>/<image>`` as shards in ``out`` with ``out/_info.json``.

    Args:
        root: an image folder with one sub-folder per split (the built-in digits' layout).
        out: the shard directory (created).
        per_shard: samples per shard; the last shard of a split holds the rest.
        splits: the split folders to write; the classes are the first split's.
        seed: the order of the samples in the shards.

    Images in JPEG, PNG or WebP are stored as they are; other formats are stored as PNG. Files that
    cannot be decoded are written too: the reader skips and names them, as it would in real shards.
    """
    if per_shard < 1:
        raise DataError(f"per_shard must be at least 1, got {per_shard}")
    wds = require("webdataset", "writing shards", "webdataset")
    root, out = Path(root), Path(out)
    present = [s for s in splits if (root / s).is_dir()]
    if not present:
        raise DataError(f"{str(root)!r} has none of the split folders {list(splits)} (expected {root}/train/<class>/)")
    out.mkdir(parents=True, exist_ok=True)
    class_names: list[str] | None = None
    written = []
    for split in present:
        folder = ImageFolderDataset(root / split, class_names=class_names)
        class_names = folder.class_names
        samples = list(folder.samples)
        random.Random(seed).shuffle(samples)
        files, lengths = [], []
        for first in range(0, len(samples), per_shard):
            name = f"{split}-{first // per_shard:06d}.tar"
            chunk = samples[first:first + per_shard]
            with wds.TarWriter(str(out / name), encoder=False) as sink:
                for index, (path, label) in enumerate(chunk, start=first):
                    member, data = _image_member(path)
                    sink.write({"__key__": f"{index:08d}", member: data, "cls": str(label).encode()})
            files.append(name)
            lengths.append(len(chunk))
        written.append(WrittenSplit(split, files, lengths))
    write_info(out / INFO_FILE, {w.name: (w.files, w.lengths) for w in written}, class_names or [])
    return written


def _image_member(path: Path) -> tuple[str, bytes]:
    """(member extension, bytes): the file itself in a kept format, else re-encoded as PNG."""
    kept = KEPT_FORMATS.get(path.suffix.lower())
    if kept is not None:
        return kept, path.read_bytes()
    try:
        image = load_rgb(path)
    except DECODE_ERRORS:
        return "png", path.read_bytes()  # undecodable: stored as is, for the reader to skip and name
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "png", buffer.getvalue()

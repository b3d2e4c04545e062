"""A shard set's info file: which shards each split has, how many samples each holds, the classes.

The format is timm's ``_info.json`` (what ``timm/imagenet-12k-wds`` ships), with the class names
added: ``{"splits": {"train": {"name": "train", "num_samples": N, "filenames": [...],
"shard_lengths": [...]}, "validation": {...}}, "num_classes": C, "class_names": [...]}``,
file names relative to the info file. The sample counts are what let a streamed epoch be split
evenly over processes and its length be known before it is read.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..interface import option
from .errors import DataError
from .source_options import DEFAULT_SPLITS, choose_split

INFO_FILE = "_info.json"
_TAR_NAME = re.compile(r"[^/\s'\"]+\.tar\b")


@dataclass(frozen=True)
class ShardList:
    """The shards of one split: where to read each (a path, URL or ``pipe:`` command) and its samples."""

    urls: tuple[str, ...]
    lengths: tuple[int, ...]
    class_names: tuple[str, ...] | None
    where: str  # the spec as given, for messages

    @property
    def num_samples(self) -> int:
        return sum(self.lengths)


def expand_shards(spec: str) -> list[str]:
    """``train-{000000..000004}.tar`` as its five names (brace expansion, as webdataset does)."""
    import braceexpand  # installed with webdataset

    return list(braceexpand.braceexpand(spec))


def read_info(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"shard info file {str(path)!r} does not exist")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"shard info file {str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(info, dict) or not isinstance(info.get("splits"), dict):
        raise DataError(f"shard info file {str(path)!r} has no 'splits' mapping of split name to "
                        f"{{'filenames': [...], 'shard_lengths': [...]}}")
    return info


def info_path(spec: str, urls: list[str], given: str | None) -> Path:
    """The info file: the one given, ``_info.json`` in a shard directory, or beside the first shard."""
    if given is not None:
        return Path(given)
    if Path(spec).is_dir():
        return Path(spec) / INFO_FILE
    if urls[0].startswith(("pipe:", "http://", "https://")) or "://" in urls[0]:
        raise DataError(f"shards {spec!r} are not local files, so their {INFO_FILE} (sample counts and classes) "
                        f"cannot be found beside them: download it and give {option('shard_info', 'PATH')}")
    return Path(urls[0]).parent / INFO_FILE


def shard_list(spec: str, role: str, split: str | None, given_info: str | None) -> ShardList:
    """The shards of ``spec`` with their sample counts and class names, checked before any is read.

    Args:
        spec: a shard directory holding ``_info.json`` (its ``split`` is read), a brace pattern of
            shard files, or ``pipe:`` commands (``pipe:aws s3 cp s3://b/train-{0..9}.tar -``).
        role: ``train`` or ``val``: which split a shard directory gives when ``split`` is None.
        split: the info file's split to read from a shard directory.
        given_info: the info file's path when it is not beside the shards.
    """
    directory = Path(spec).is_dir()
    urls = [] if directory else expand_shards(spec)
    path = info_path(spec, urls or [spec], given_info)
    info = read_info(path)
    splits = info["splits"]
    if directory:
        name = choose_split(list(splits), split, role, f"shard info {str(path)!r}")
        urls = [str(path.parent / f) for f in splits[name].get("filenames", [])]
    elif role == "val" and (split is not None or _owner(splits, urls[0]) not in (*DEFAULT_SPLITS["val"], None)):
        # the training shards' pattern, asked for validation: the info file's validation split, read
        # the way the training shards are (same directory, URL or command, another file name)
        name = choose_split(list(splits), split, role, f"shard info {str(path)!r}")
        template, train_name = urls[0], _tar_name(urls[0])
        urls = [template.replace(train_name, Path(f).name) for f in splits[name].get("filenames", [])]
    local_missing = [u for u in urls if not u.startswith("pipe:") and "://" not in u and not os.path.isfile(u)]
    if local_missing:
        raise DataError(f"shard file(s) {local_missing[:3]}{' ...' if len(local_missing) > 3 else ''} of "
                        f"{spec!r} do not exist")
    lengths = _lengths(splits, path)
    missing_counts = [u for u in urls if _tar_name(u) not in lengths]
    if missing_counts:
        raise DataError(f"{str(path)!r} lists no sample count for shard(s) {missing_counts[:3]}"
                        f"{' ...' if len(missing_counts) > 3 else ''}: the counts split an epoch over processes "
                        f"and give its length; rewrite the info file (splitattn write-shards writes one)")
    names = info.get("class_names")
    return ShardList(tuple(urls), tuple(lengths[_tar_name(u)] for u in urls),
                     tuple(str(n) for n in names) if names else None, spec)


def shard_class_names(info: ShardList, given: int | None) -> list[str]:
    """Class names of a shard set: its info file's, or ``0..given-1``; neither is an error."""
    if info.class_names:
        return list(info.class_names)
    if given is not None:
        return [str(i) for i in range(given)]
    raise DataError(f"shards {info.where!r}: the number of classes is unknown; add \"class_names\" to their "
                    f"{INFO_FILE} (splitattn write-shards writes it) or give {option('num_classes', 'N')}")


def _lengths(splits: dict[str, Any], path: Path) -> dict[str, int]:
    """Shard file name -> sample count, over all splits of the info file."""
    lengths: dict[str, int] = {}
    for name, entry in splits.items():
        files, counts = entry.get("filenames", []), entry.get("shard_lengths", [])
        if len(files) != len(counts):
            raise DataError(f"{str(path)!r}: split {name!r} lists {len(files)} filenames but "
                            f"{len(counts)} shard_lengths")
        lengths.update({Path(f).name: int(c) for f, c in zip(files, counts, strict=True)})
    return lengths


def _owner(splits: dict[str, Any], url: str) -> str | None:
    """The split of the info file that lists the shard ``url``."""
    name = _tar_name(url)
    return next((s for s, entry in splits.items() if name in {Path(f).name for f in entry.get("filenames", [])}),
                None)


def _tar_name(url: str) -> str:
    """The shard's file name in a path, URL or ``pipe:`` command."""
    found = _TAR_NAME.findall(url)
    return Path(found[-1]).name if found else Path(url).name


def write_info(path: Path, splits: dict[str, tuple[list[str], list[int]]], class_names: list[str]) -> None:
    """Write an info file for ``splits`` (name -> shard file names and their sample counts)."""
    info = {"splits": {name: {"name": name, "num_samples": sum(counts), "filenames": files,
                              "shard_lengths": counts} for name, (files, counts) in splits.items()},
            "num_classes": len(class_names), "class_names": class_names}
    path.write_text(json.dumps(info, indent=1) + "\n")

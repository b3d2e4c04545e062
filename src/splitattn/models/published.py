"""Published weights as data: every place a weight file can be fetched from, and what it reaches.

Each zoo entry lists the weight sets published for it, as *tags* in timm's ``name.tag`` spelling
(``seresnet50.a1_in1k``); the first tag is the name's default. A tag lists every copy of its file
that is public today, in the order they are tried: the authors' own release first, then mirrors,
then the Hugging Face Hub. Hosts go away (the ResNeSt authors' original storage began answering
HTTP 403), so no tag depends on one host where a second exists.

Nothing here downloads; ``splitattn.weights`` reads these records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlparse

from ..errors import SplitattnError

HUB_PREFIX = "hf-hub:"
LAYOUTS = ("ours", "official", "timm")
# torch.hub's convention: "name-<first hex digits of the sha256>.ext"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")


def hash_from_filename(name: str) -> str | None:
    """The sha256 prefix a torch-hub style file name carries (``resnest50-528c19ca.pth``), if any."""
    match = _HASH_IN_NAME.search(PurePosixPath(name).name)
    return match.group(1) if match else None


@dataclass(frozen=True)
class WeightSource:
    """One copy of a weight file.

    ``url`` is an ``https://`` (or ``http://``, ``file://``) address, or ``hf-hub:org/repo`` for a
    Hugging Face Hub repository holding ``model.safetensors`` or ``pytorch_model.bin``.
    ``sha256`` is the published digest (a prefix is enough), None where none is published: Hub
    files are addressed by their content on the Hub itself. ``layout`` names the parameter-naming
    scheme of the file, for ``splitattn.weights.convert_state_dict``.
    """

    url: str
    sha256: str | None
    layout: str

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise SplitattnError(f"{self.url}: layout must be one of {LAYOUTS}, got {self.layout!r}")

    @property
    def is_hub(self) -> bool:
        return self.url.startswith(HUB_PREFIX)

    @property
    def filename(self) -> str:
        """The file name a download of this source is cached under (Hub repos use the Hub's cache)."""
        return PurePosixPath(urlparse(self.url).path).name

    @property
    def host(self) -> str:
        """Where the file lives, for messages and tables: ``github.com``, ``hf-hub:timm/...``."""
        return self.url if self.is_hub else urlparse(self.url).netloc or self.url


@dataclass(frozen=True, kw_only=True)
class PublishedWeights:
    """One published weight set of a zoo model (a tag) and the evaluation it was reported with.

    ``top1`` is the ImageNet-1k validation top-1 (%) these weights reach at ``input_size`` with
    ``crop_pct`` and ``interpolation`` (None: the model's defaults), as measured by ``top1_by``.
    Keyword-only: four of its fields are free-form strings, which positions would let a zoo file
    swap without any error.
    """

    tag: str
    sources: tuple[WeightSource, ...]
    top1: float
    top1_by: str
    license: str
    trained_by: str
    input_size: tuple[int, int, int] | None = None
    crop_pct: float | None = None
    interpolation: str | None = None

    def __post_init__(self) -> None:
        if not self.sources:
            raise SplitattnError(f"weights {self.tag!r} list no source")

    @property
    def eval_settings(self) -> dict:
        """The input settings that differ from the model's defaults for these weights."""
        settings = {"input_size": self.input_size, "crop_pct": self.crop_pct, "interpolation": self.interpolation}
        return {k: v for k, v in settings.items() if v is not None}


def release(url: str, layout: str) -> WeightSource:
    """A release file whose name carries its sha256 prefix (torch hub's naming)."""
    digest = hash_from_filename(url)
    if digest is None:
        raise SplitattnError(f"{url}: no sha256 prefix in the file name; give the digest explicitly")
    return WeightSource(url, digest, layout)


def hub(repo_id: str) -> WeightSource:
    """A Hugging Face Hub repository in timm's layout (all the Hub repos listed here are timm's)."""
    return WeightSource(f"{HUB_PREFIX}{repo_id}", None, "timm")


# timm's GitHub repository moved from rwightman/ to huggingface/; GitHub answers both spellings,
# the new one directly and the old one by redirect, which ends if the old name is ever reused.
_TIMM_RELEASES = ("https://github.com/huggingface/pytorch-image-models/releases/download/",
                  "https://github.com/rwightman/pytorch-image-models/releases/download/")


def timm_release(path: str, layout: str = "timm") -> tuple[WeightSource, ...]:
    """A file of timm's GitHub releases (``v0.1-weights/skresnet18_ra-4eec2804.pth``), both spellings."""
    return tuple(release(base + path, layout) for base in _TIMM_RELEASES)


def timm_file(path: str, repo_id: str) -> tuple[WeightSource, ...]:
    """A timm release file and timm's Hub repository of the same weights."""
    return (*timm_release(path), hub(repo_id))

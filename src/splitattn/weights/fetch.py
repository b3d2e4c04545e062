"""Getting a published weight set onto this machine: every source it has, tried in order.

First, anything already here wins without a network request: a verified copy in our cache under
any source's file name, or the Hub repository in the Hugging Face cache. Then each source is tried
in the order the zoo lists it; an HTTP error, a timeout, a hash mismatch or a Hub repository
without the file moves on to the next, and when none is left the error lists every attempt and
where a file fetched elsewhere can be put.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..models.published import PublishedWeights, WeightSource
from .checkpoint_io import CheckpointError
from .download import WeightsUnavailableError, cache_dir, download, offline_advice, verify_sha256
from .hub import Repo


@dataclass(frozen=True)
class Fetched:
    """A local weight file and the source it came from (which says its layout)."""

    path: Path
    source: WeightSource


def _local_copy(source: WeightSource) -> Path | None:
    if source.is_hub:
        try:
            return Repo(source.url).weights_file(cached_only=True)
        except WeightsUnavailableError:  # huggingface_hub missing: the download pass reports it
            return None
    path = cache_dir() / source.filename
    if not path.is_file():
        return None
    try:
        verify_sha256(path, source.sha256)
    except CheckpointError:
        return None  # a corrupted copy: the download pass replaces it
    return path


def _fetch(source: WeightSource, progress: bool) -> Path:
    if source.is_hub:
        return Repo(source.url).weights_file()
    return download(source.url, source.sha256, progress=progress)


def fetch_published(name: str, weights: PublishedWeights, progress: bool = True) -> Fetched:
    """The local file of ``name``'s weights ``weights.tag``, from the cache or the first source that serves it."""
    for source in weights.sources:
        path = _local_copy(source)
        if path is not None:
            return Fetched(path, source)
    failures = []
    for source in weights.sources:
        try:
            return Fetched(_fetch(source, progress), source)
        except (WeightsUnavailableError, CheckpointError) as error:
            failures.append(str(error))
    tried = "\n".join(f"  {i}. {failure}" for i, failure in enumerate(failures, start=1))
    first_file = next((s.filename for s in weights.sources if not s.is_hub), None)
    by_hand = (f"To use them offline, fetch one of these files elsewhere (`splitattn download {name}.{weights.tag}` "
               f"does it) and {offline_advice(first_file)}" if first_file else "")
    raise WeightsUnavailableError(
        f"could not get the published weights {name}.{weights.tag} from any of their {len(failures)} sources:\n"
        f"{tried}\n{by_hand}".rstrip()
    )

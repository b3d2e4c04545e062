"""Model repositories: Hugging Face Hub repos (through ``huggingface_hub``) and local folders.

The Hub is reached only through ``huggingface_hub``, so its cache (``$HF_HOME``,
``$HF_HUB_CACHE``), its token (``hf auth login``, ``$HF_TOKEN``) and its offline mode
(``HF_HUB_OFFLINE=1``: cached files only) all work as users set them. The package is an optional
extra (``pip install 'splitattn[hub]'``) and is imported only here, on use.

A repository is named ``hf-hub:org/repo`` (optionally ``@revision``) or ``local-dir:PATH`` (a
folder laid out the same way, e.g. what ``save_pretrained`` wrote).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SplitattnError
from ..models.published import HUB_PREFIX
from .download import WeightsUnavailableError

LOCAL_PREFIX = "local-dir:"
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INSTALL_HINT = "pip install 'splitattn[hub]' (or pip install huggingface_hub)"


class RepoError(WeightsUnavailableError):
    """A repository that does not exist, cannot be reached, or does not hold what was asked."""


def is_repo_spec(name: object) -> bool:
    return isinstance(name, str) and name.startswith((HUB_PREFIX, LOCAL_PREFIX))


@dataclass(frozen=True)
class Repo:
    """``hf-hub:org/repo[@revision]`` or ``local-dir:PATH``; :meth:`file` gets one file of it locally."""

    spec: str

    def __post_init__(self) -> None:
        if not is_repo_spec(self.spec):
            raise SplitattnError(f"expected 'hf-hub:org/repo' or 'local-dir:PATH', got {self.spec!r}")
        if self.is_hub and self.repo_id.count("/") != 1:
            raise SplitattnError(f"{self.spec!r}: a Hub repository is named 'hf-hub:org/repo' "
                                 "(e.g. hf-hub:timm/resnest50d.in1k)")

    @property
    def is_hub(self) -> bool:
        return self.spec.startswith(HUB_PREFIX)

    @property
    def repo_id(self) -> str:
        return self.spec[len(HUB_PREFIX):].partition("@")[0] if self.is_hub else ""

    @property
    def revision(self) -> str | None:
        return (self.spec.partition("@")[2] or None) if self.is_hub else None

    @property
    def folder(self) -> Path:
        return Path(self.spec[len(LOCAL_PREFIX):]).expanduser()

    def file(self, filename: str, cached_only: bool = False) -> Path | None:
        """The local path of ``filename`` in the repository; None when the repository lacks it.

        ``cached_only``: look in the Hugging Face cache only (None when not there), no network.
        """
        if not self.is_hub:
            if not self.folder.is_dir():
                raise RepoError(f"{self.spec}: folder {str(self.folder)!r} does not exist")
            path = self.folder / filename
            return path if path.is_file() else None
        return _hub_file(self.repo_id, filename, self.revision, cached_only)

    def weights_file(self, cached_only: bool = False) -> Path | None:
        """``model.safetensors``, else ``pytorch_model.bin``; an error naming both when neither is there.

        ``cached_only``: None instead of an error when neither is in the Hugging Face cache.
        """
        first_error = None
        for filename in WEIGHT_FILES:
            try:
                path = self.file(filename, cached_only)
            except RepoError as error:  # offline, a cache may hold the second file but not the first
                first_error = first_error or error
                continue
            if path is not None:
                return path
        if cached_only:
            return None
        if first_error is not None:
            raise first_error
        raise RepoError(f"{self.spec} holds no weights: neither {' nor '.join(WEIGHT_FILES)} is in it")

    def config(self) -> dict[str, Any]:
        """The repository's ``config.json`` (ours or timm's); an error when it has none."""
        path = self.file(CONFIG_FILE)
        if path is None:
            raise RepoError(f"{self.spec} has no {CONFIG_FILE}, so the architecture it holds is unknown; "
                            "load its weights into a model you build: create_model(NAME, pretrained=FILE)")
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise RepoError(f"{self.spec}: {CONFIG_FILE} is not valid JSON ({error})") from None
        if not isinstance(config, dict):
            raise RepoError(f"{self.spec}: {CONFIG_FILE} must hold a JSON object")
        return config


def _hub_file(repo_id: str, filename: str, revision: str | None, cached_only: bool = False) -> Path | None:
    """One file through huggingface_hub's cache; None when the repository has no such file."""
    try:
        import huggingface_hub
        from huggingface_hub import errors
    except ImportError:
        raise RepoError(f"hf-hub:{repo_id} needs the huggingface_hub package: {INSTALL_HINT}") from None
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, revision=revision, library_name="splitattn",
                                                    local_files_only=cached_only))
    except errors.GatedRepoError:
        raise RepoError(f"hf-hub:{repo_id} is gated: accept its terms on huggingface.co and log in "
                        "(hf auth login, or set HF_TOKEN)") from None
    except errors.RepositoryNotFoundError:
        raise RepoError(f"hf-hub:{repo_id} does not exist on the Hub (or is private: log in with "
                        "hf auth login, or set HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise RepoError(f"hf-hub:{repo_id} has no revision {revision!r}") from None
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled):
        if cached_only:
            return None
        if huggingface_hub.constants.HF_HUB_OFFLINE:
            reason = "offline mode is on (HF_HUB_OFFLINE=1)"
        else:
            reason = "the Hub could not be reached"
        raise RepoError(f"hf-hub:{repo_id}: {reason} and {filename} is not in the Hugging Face cache "
                        f"({huggingface_hub.constants.HF_HUB_CACHE}); on a machine online, `hf download "
                        f"{repo_id}` fills the cache, which can then be copied here") from None
    except errors.EntryNotFoundError:  # after LocalEntryNotFoundError, which is one of these too
        return None
    except errors.HfHubHTTPError as error:
        raise RepoError(f"hf-hub:{repo_id}: the Hub answered {error}") from None

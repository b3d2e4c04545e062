"""``push_to_hub``: a training run to a Hugging Face Hub repository, through ``huggingface_hub``.

The run's best checkpoint becomes a ``save_pretrained`` folder (weights, config.json, model card,
curves), which is uploaded in one commit. Authentication is huggingface_hub's: ``hf auth login``,
``$HF_TOKEN`` or ``token=``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import SplitattnError
from ..interface import option
from ..weights.hub import INSTALL_HINT, RepoError
from .pretrained import save_pretrained
from .run import read_run


def push_to_hub(run_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None,
                license: str | None = None, local_dir: str | os.PathLike | None = None, upload: bool = True,
                commit_message: str | None = None) -> str:
    """Upload the model of a ``splitattn train`` run directory to ``repo_id``; returns the commit URL.

    ``local_dir`` keeps the folder that is uploaded (a temporary one otherwise); with
    ``upload=False`` nothing is sent and the folder's path is returned, to look at first.
    """
    if repo_id.count("/") != 1 or repo_id.startswith("hf-hub:"):
        raise SplitattnError(f"repository must be named ORG/NAME (e.g. alice/resnest14d-digits), got {repo_id!r}")
    run = read_run(run_dir)
    if not upload and local_dir is None:
        raise SplitattnError(f"without uploading, name the folder to write with {option('local_dir', 'DIR')}")
    with tempfile.TemporaryDirectory(prefix="splitattn-push-") as scratch:
        folder = save_pretrained(run.trained.model, Path(local_dir or scratch), repo_id=repo_id, run=run,
                                 license=license)
        if not upload:
            return str(folder)
        try:
            from huggingface_hub import HfApi
        except ImportError:
            raise RepoError(f"pushing to the Hub needs the huggingface_hub package: {INSTALL_HINT}") from None
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder,
                                   commit_message=commit_message or f"Upload {run.trained.model_name} from splitattn")
        return str(getattr(commit, "commit_url", commit))

"""Weights: published sources, safe file I/O, layout conversion and loading into models."""

from .adapt import adapt_input_conv
from .checkpoint_io import CheckpointError, load_checkpoint_file, save_state_dict
from .convert import SOURCES, TARGETS, convert_state_dict, detect_source, export_state_dict, unwrap_state_dict
from .download import HashMismatchError, WeightsUnavailableError, cache_dir, download, sha256_of
from .fetch import Fetched, fetch_published
from .hub import Repo, RepoError, is_repo_spec
from .load import PUBLISHED, classifier_outputs, load_pretrained, load_state

__all__ = [
    "PUBLISHED",
    "SOURCES",
    "TARGETS",
    "CheckpointError",
    "Fetched",
    "HashMismatchError",
    "Repo",
    "RepoError",
    "WeightsUnavailableError",
    "adapt_input_conv",
    "cache_dir",
    "classifier_outputs",
    "convert_state_dict",
    "detect_source",
    "download",
    "export_state_dict",
    "fetch_published",
    "is_repo_spec",
    "load_checkpoint_file",
    "load_pretrained",
    "load_state",
    "save_state_dict",
    "sha256_of",
    "unwrap_state_dict",
]

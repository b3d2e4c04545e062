"""Data: the built-in digits set, robust image folders, transforms and loaders."""

from .digits import prepare_digits
from .folder import DataError, ImageFolderDataset, collate_skipping, load_rgb
from .image_files import ImageBatch, ImageFiles, collate_images, find_images
from .shard_writer import write_shards
from .skips import SkippedSample
from .source_options import SourceOptions
from .sources import SOURCE_KINDS, DataSource, EvalSource, open_eval_source, open_source
from .transforms import batch_mix, eval_crop, eval_transform, train_transform

__all__ = [
    "SOURCE_KINDS",
    "DataError",
    "DataSource",
    "EvalSource",
    "ImageBatch",
    "ImageFiles",
    "ImageFolderDataset",
    "SkippedSample",
    "SourceOptions",
    "batch_mix",
    "collate_images",
    "collate_skipping",
    "eval_crop",
    "eval_transform",
    "find_images",
    "load_rgb",
    "open_eval_source",
    "open_source",
    "prepare_digits",
    "train_transform",
    "write_shards",
]

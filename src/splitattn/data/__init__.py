"""Data: the built-in digits set, robust image folders, transforms and loaders."""

from .batches import KeyedBatch, collate_keyed, collate_skipping
from .decode import decode_problem, load_rgb, read_or_skip
from .digits import prepare_digits
from .errors import DataError
from .eval_sources import EvalSource, open_eval_source
from .folder import ImageFolderDataset
from .image_files import IMAGE_EXTENSIONS, ImageFiles, find_images, image_files_under
from .shard_writer import write_shards
from .skips import SkippedSample
from .source_options import SourceOptions
from .sources import SOURCE_KINDS, DataSource, open_source
from .transforms import batch_mix, eval_crop, eval_transform, train_transform

__all__ = [
    "IMAGE_EXTENSIONS",
    "SOURCE_KINDS",
    "DataError",
    "DataSource",
    "EvalSource",
    "ImageFiles",
    "ImageFolderDataset",
    "KeyedBatch",
    "SkippedSample",
    "SourceOptions",
    "batch_mix",
    "collate_keyed",
    "collate_skipping",
    "decode_problem",
    "eval_crop",
    "eval_transform",
    "find_images",
    "image_files_under",
    "load_rgb",
    "open_eval_source",
    "open_source",
    "prepare_digits",
    "read_or_skip",
    "train_transform",
    "write_shards",
]

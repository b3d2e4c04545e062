"""Data: the built-in digits set, robust image folders, transforms and loaders."""

from .digits import prepare_digits
from .folder import DataError, ImageFolderDataset, collate_skipping, load_rgb
from .image_files import ImageBatch, ImageFiles, collate_images, find_images
from .transforms import batch_mix, eval_crop, eval_transform, train_transform

__all__ = [
    "DataError",
    "ImageBatch",
    "ImageFiles",
    "ImageFolderDataset",
    "batch_mix",
    "collate_images",
    "collate_skipping",
    "eval_crop",
    "eval_transform",
    "find_images",
    "load_rgb",
    "prepare_digits",
    "train_transform",
]

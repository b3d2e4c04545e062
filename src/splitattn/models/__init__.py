"""The network skeleton, its blocks, the feature backbone and the registered zoo."""

from . import baselines, resnest, senet, sknet  # noqa: F401  (registers the zoo)
from .blocks import BasicBlock, Bottleneck
from .features import ResNetFeatures
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelEntry, PretrainedCfg, get_model_entry, list_models
from .resnet import FeatureInfo, ResNet

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BasicBlock",
    "Bottleneck",
    "FeatureInfo",
    "ModelEntry",
    "PretrainedCfg",
    "ResNet",
    "ResNetFeatures",
    "get_model_entry",
    "list_models",
]

"""Training and evaluation: the paper's recipe, checkpoints that resume exactly, torchrun support."""

from .config import PRESETS, TrainConfig, build_config, imagenet_recipe
from .evaluate import evaluate
from .optim import build_optimizer, build_scheduler, param_groups
from .trainer import Trainer, TrainingDiverged, train

__all__ = [
    "PRESETS",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "build_config",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "imagenet_recipe",
    "param_groups",
    "train",
]

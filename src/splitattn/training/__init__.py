"""Training and evaluation: the paper's recipe, checkpoints that resume exactly, torchrun support.

The optimiser, schedule, checkpoint writer and config loader here serve the detection and
segmentation training too (``splitattn.dense``).
"""

from .config import PRESETS, TrainConfig, build_config, imagenet_recipe
from .evaluate import evaluate
from .optim import OPTIMIZERS, build_optimizer, build_scheduler, param_groups, warmup_cosine
from .trainer import Trainer, TrainingDiverged, train

__all__ = [
    "OPTIMIZERS",
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
    "warmup_cosine",
]

"""Training and evaluation: the paper's recipe, checkpoints that resume exactly, torchrun support.

One loop (``training.loop``), one resume rule (``training.resume``) and one config base
(``training.config.RunConfig``) serve classification here and the detection and segmentation
training (``splitattn.dense``), with the optimiser, schedule, checkpoint writer and config loader.
"""

from .config import PRESETS, RunConfig, TrainConfig, build_config, imagenet_recipe
from .evaluate import evaluate
from .loop import TrainingDiverged
from .optim import OPTIMIZERS, build_optimizer, build_scheduler, param_groups, warmup_cosine
from .trainer import Trainer, train

__all__ = [
    "OPTIMIZERS",
    "PRESETS",
    "RunConfig",
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

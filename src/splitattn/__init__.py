"""splitattn: SENet, SKNet and ResNeSt (split attention) networks for PyTorch."""

from .deploy import deploy
from .errors import SplitattnError
from .factory import create_model
from .layers import DropBlock2d, DropPath, SelectiveKernelConv, SplitAttnConv2d, SqueezeExcite
from .models import ResNet, get_model_entry, list_models
from .weights import convert_state_dict

__version__ = "0.1.0"

# Sharing builds on training (and so on torchvision's data transforms, seconds to import): loaded
# on first use, so ``import splitattn`` stays as light as the models.
_LAZY = {"push_to_hub": "sharing", "save_pretrained": "sharing"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DropBlock2d",
    "DropPath",
    "ResNet",
    "SelectiveKernelConv",
    "SplitAttnConv2d",
    "SplitattnError",
    "SqueezeExcite",
    "convert_state_dict",
    "create_model",
    "deploy",
    "get_model_entry",
    "list_models",
    "push_to_hub",
    "save_pretrained",
]

"""splitattn: SENet, SKNet and ResNeSt (split attention) networks for PyTorch."""

from .deploy import deploy
from .factory import create_model
from .layers import DropBlock2d, DropPath, SelectiveKernelConv, SplitAttnConv2d, SqueezeExcite
from .models import ResNet, get_model_entry, list_models
from .weights import convert_state_dict

__version__ = "0.1.0"

__all__ = [
    "DropBlock2d",
    "DropPath",
    "ResNet",
    "SelectiveKernelConv",
    "SplitAttnConv2d",
    "SqueezeExcite",
    "convert_state_dict",
    "create_model",
    "deploy",
    "get_model_entry",
    "list_models",
]

"""Building blocks: the three featuremap-attention layers and the regularisers they are trained with."""

from .drop_block import DropBlock2d, set_drop_block_progress
from .drop_path import DropPath
from .helpers import make_divisible
from .pooling import ZeroPadAvgPool2d, spatial_mean
from .selective_kernel import SelectiveKernelAttn, SelectiveKernelConv
from .split_attn import SplitAttnConv2d, radix_softmax
from .squeeze_excite import SqueezeExcite
from .weighted_sum import split_weighted_sum

__all__ = [
    "DropBlock2d",
    "DropPath",
    "SelectiveKernelAttn",
    "SelectiveKernelConv",
    "SplitAttnConv2d",
    "SqueezeExcite",
    "ZeroPadAvgPool2d",
    "make_divisible",
    "radix_softmax",
    "set_drop_block_progress",
    "spatial_mean",
    "split_weighted_sum",
]

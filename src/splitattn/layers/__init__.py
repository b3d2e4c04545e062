"""Building blocks: the attention kinds (specs and the layers they build) and the regularisers."""

from .attention_spec import (
    NO_ATTENTION,
    AttentionLayer,
    AttentionSpec,
    Chain,
    Gate,
    NoAttention,
    make_act,
    resolve_attention,
)
from .drop_block import DropBlock2d, set_drop_block_progress
from .drop_path import DropPath
from .helpers import make_divisible
from .pooling import ZeroPadAvgPool2d, accumulation_dtype, spatial_mean
from .selective_kernel import SelectiveKernel, SelectiveKernelAttn, SelectiveKernelConv
from .split_attn import SplitAttention, SplitAttnConv2d, radix_softmax
from .squeeze_excite import SqueezeExcitation, SqueezeExcite
from .weighted_sum import split_weighted_sum

__all__ = [
    "NO_ATTENTION",
    "AttentionLayer",
    "AttentionSpec",
    "Chain",
    "DropBlock2d",
    "DropPath",
    "Gate",
    "NoAttention",
    "SelectiveKernel",
    "SelectiveKernelAttn",
    "SelectiveKernelConv",
    "SplitAttention",
    "SplitAttnConv2d",
    "SqueezeExcitation",
    "SqueezeExcite",
    "ZeroPadAvgPool2d",
    "accumulation_dtype",
    "make_act",
    "make_divisible",
    "radix_softmax",
    "resolve_attention",
    "set_drop_block_progress",
    "spatial_mean",
    "split_weighted_sum",
]

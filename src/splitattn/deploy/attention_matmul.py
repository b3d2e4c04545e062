"""The attention MLPs as matrix products: their 1 x 1 convs on 1 x 1 maps become linear layers.

Every attention layer turns a pooled descriptor into its weights through two small layers (fc1 and
fc2, fc_reduce and fc_select) that the layers hold as 1 x 1 convs, because their published weights
are conv weights. They only ever see a pooled ``(N, C, 1, 1)`` map, so each is a matrix product on
the ``(N, C)`` vector. As a conv each is a oneDNN convolution with its own set-up per call (about
32 per ResNeSt-50 forward, each a few microseconds of arithmetic); as ``nn.Linear`` it is one
GEMM that inductor packs once and fuses with the bias, the ReLU and the softmax around it.

The BN between fc1 and fc2 is folded into fc1 before this runs (``fold``), so only biased convs
remain. A grouped conv (cardinality groups) becomes a block-diagonal matrix: the same products
plus exact zeros, one GEMM instead of ``groups`` small ones; these layers are small (a ResNeSt-50's
widest is 256 x 1024), so the zeros cost less than the extra calls would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SplitattnError, one_of
from ..layers import AttentionLayer, Gate

# form -> the attention layers whose MLPs keep their 1 x 1 convs (every other one becomes a PooledLinear)
ATTENTION_MLP_FORMS: dict[str, tuple[type[AttentionLayer], ...]] = {
    "matmul": (),
    "conv": (AttentionLayer,),
    "matmul-except-gates": (Gate,),
}


class PooledLinear(nn.Linear):
    """A 1 x 1 conv applied to a 1 x 1 map, computed as a matrix product; takes and returns 4-D maps
    ``(N, C, 1, 1)`` like the conv it replaces, so the attention layer's forward does not change."""

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> PooledLinear:
        """The linear layer equal to ``conv`` on 1 x 1 inputs (block-diagonal for a grouped conv)."""
        groups, out_channels, in_channels = conv.groups, conv.out_channels, conv.in_channels
        linear = cls(in_channels, out_channels, bias=conv.bias is not None, device=conv.weight.device,
                     dtype=conv.weight.dtype)
        with torch.no_grad():
            linear.weight.zero_()
            per_out, per_in = out_channels // groups, in_channels // groups
            kernel = conv.weight.reshape(out_channels, per_in)
            for g in range(groups):
                linear.weight[g * per_out:(g + 1) * per_out, g * per_in:(g + 1) * per_in] = \
                    kernel[g * per_out:(g + 1) * per_out]
            if conv.bias is not None:
                linear.bias.copy_(conv.bias)
        return linear.train(conv.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (1, 1):
            raise SplitattnError(f"an attention MLP layer rewritten as a matrix product takes pooled (N, C, 1, 1) "
                                 f"maps, got {tuple(x.shape)}; deploy with attention_mlp='conv'")
        return F.linear(x.flatten(1), self.weight, self.bias).view(x.shape[0], -1, 1, 1)


def _is_pointwise(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride == (1, 1)
            and module.padding == (0, 0) and module.dilation == (1, 1))


def attention_mlps_as_matmuls(model: nn.Module, form: str = "matmul") -> int:
    """Replace, in place, the attention MLP convs the attention layers declare
    (``AttentionLayer.attention_mlp``) by :class:`PooledLinear` layers, as ``form`` says; returns how many.

    Args:
        model: a folded model (BNs inside the attention already folded into its convs).
        form: a key of :data:`ATTENTION_MLP_FORMS`: ``"matmul"`` (every MLP), ``"conv"`` (none) or
            ``"matmul-except-gates"`` (all but those of gates such as squeeze-excitation).
    """
    keep_conv = one_of(ATTENTION_MLP_FORMS, form, "attention_mlp")
    replaced = 0
    for layer in list(model.modules()):
        if not isinstance(layer, AttentionLayer) or isinstance(layer, keep_conv):
            continue
        for name in layer.attention_mlp:
            conv = getattr(layer, name, None)
            if _is_pointwise(conv):
                setattr(layer, name, PooledLinear.from_conv(conv))
                replaced += 1
    return replaced

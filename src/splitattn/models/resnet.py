"""One ResNet skeleton for every network in the zoo.

Stem, four stages of residual blocks, global pooling and a linear classifier. Everything that
differs between ResNet, ResNet-D, ResNeXt, SENet, SKNet and ResNeSt is a constructor argument;
the zoo files (``resnest.py``, ``senet.py``, ``sknet.py``, ``baselines.py``) are lists of those
arguments. Parameter names follow torchvision and timm (``conv1``, ``bn1``, ``layer1``..``layer4``,
``fc``) so that most published checkpoints load with no renaming at all. The stages (strides and
dilations, drop schedules, avd, shortcuts) are built in ``stages.py``, as torchvision's ``_make_layer``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from ..errors import ArgumentTypeError, SplitattnError
from ..layers import NO_ATTENTION, AttentionSpec, Chain, make_act
from ..layers.attention_spec import ModuleFactory
from .blocks import BasicBlock, Bottleneck
from .stages import StageLayout, make_stage, plan_stages

OUTPUT_STRIDES = (8, 16, 32)
STEM_CHAIN = Chain("conv1", "bn1", "act1")  # the stem's last conv, its norm and activation


@dataclass(frozen=True)
class FeatureInfo:
    """One feature map a backbone can return: its channels, its stride and where it comes from."""

    channels: int
    stride: int
    module: str


def _stem(in_chans: int, stem_width: int, deep_stem: bool, norm_layer: ModuleFactory,
          act_layer: ModuleFactory) -> nn.Module:
    """7 x 7 conv, or (ResNet-C/D) three 3 x 3 convs of widths w, w, 2w; the final norm is ``bn1``."""
    if not deep_stem:
        return nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
    return nn.Sequential(
        nn.Conv2d(in_chans, stem_width, 3, stride=2, padding=1, bias=False),
        norm_layer(stem_width),
        make_act(act_layer),
        nn.Conv2d(stem_width, stem_width, 3, stride=1, padding=1, bias=False),
        norm_layer(stem_width),
        make_act(act_layer),
        nn.Conv2d(stem_width, stem_width * 2, 3, stride=1, padding=1, bias=False),
    )


def _check_config(block, layers, attn, output_stride, in_chans, num_classes, stem_pool, dilation_style, avd) -> None:
    """Reject configurations that would fail later with an unhelpful shape error."""
    if not (isinstance(block, type) and issubclass(block, (BasicBlock, Bottleneck))):
        raise SplitattnError(f"block must be BasicBlock or Bottleneck, got {block!r}")
    if len(layers) != 4 or any(int(n) < 1 for n in layers):
        raise SplitattnError(f"layers must be four positive block counts, got {tuple(layers)}")
    if not isinstance(attn, AttentionSpec):
        raise ArgumentTypeError(f"attn must be an attention spec such as SplitAttention(radix=2), "
                                "SqueezeExcitation() or "
                                f"NoAttention(), got {type(attn).__name__} {attn!r}")
    if output_stride not in OUTPUT_STRIDES:
        raise SplitattnError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
    if in_chans < 1:
        raise SplitattnError(f"in_chans must be >= 1, got {in_chans}")
    if num_classes < 0:
        raise SplitattnError(f"num_classes must be >= 0 (0 removes the classifier), got {num_classes}")
    if stem_pool not in ("pad", "ceil"):
        raise SplitattnError(f"stem_pool must be 'pad' or 'ceil', got {stem_pool!r}")
    if dilation_style not in ("timm", "official"):
        raise SplitattnError(f"dilation_style must be 'timm' or 'official', got {dilation_style!r}")
    if avd and not issubclass(block, Bottleneck):
        raise SplitattnError("avd (average downsampling) needs Bottleneck blocks")


class Trunk(nn.Module):
    """The stem and the stages, shared by the classifier (:class:`ResNet`) and the backbone
    (:class:`~splitattn.models.features.ResNetFeatures`), which hold them under the same names."""

    deploy_chains: ClassVar[tuple[Chain, ...]] = (STEM_CHAIN,)
    in_chans: int
    grad_checkpointing: str | bool

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i}") for i in range(1, 5) if hasattr(self, f"layer{i}")]

    def check_input(self, x: torch.Tensor) -> None:
        """Fail early, naming the expected shape, instead of deep inside a conv."""
        if x.ndim != 4:
            raise SplitattnError(
                f"expected a 4-D input of shape (N, {self.in_chans}, H, W), got {x.ndim}-D shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_chans:
            raise SplitattnError(
                f"expected input of shape (N, {self.in_chans}, H, W) with {self.in_chans} channel(s), "
                f"got shape {tuple(x.shape)}"
            )

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv1(x)))

    def run_stage(self, stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """One stage, through gradient checkpointing when it is on and autograd is recording."""
        if not self.grad_checkpointing or not torch.is_grad_enabled() or torch.jit.is_scripting():
            return stage(x)
        if self.grad_checkpointing == "block":
            for block in stage:
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            return x
        return torch.utils.checkpoint.checkpoint(stage, x, use_reentrant=False)

    def set_grad_checkpointing(self, enable: bool = True, granularity: str = "stage") -> None:
        """Recompute activations in the backward pass instead of storing them, to save memory.

        ``granularity="stage"`` keeps only each stage's input; ``"block"`` keeps each block's
        input, which stores a little more but recomputes one block at a time, so the peak (the
        activations of the block being recomputed) is much lower for deep stages.
        """
        if granularity not in ("stage", "block"):
            raise SplitattnError(f"granularity must be 'stage' or 'block', got {granularity!r}")
        self.grad_checkpointing = granularity if enable else False


class ResNet(Trunk):
    """ResNet family with per-block featuremap attention.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for 50 layers.
        attn: the blocks' attention: ``SplitAttention(radix=2)`` (Bottleneck only),
            ``SqueezeExcitation()``, ``SelectiveKernel()``, ``NoAttention()`` or any other
            :class:`~splitattn.layers.AttentionSpec`.
        cardinality: ResNeXt groups; block width is ``planes * base_width / 64 * cardinality``.
        base_width: ResNeXt width per group (64 for a plain ResNet).
        stem_width: channels of the stem's first convs (deep stem) or its one 7 x 7 conv.
        deep_stem: three 3 x 3 convs instead of one 7 x 7 (ResNet-C/D).
        stem_pool: ``"pad"`` (3 x 3 max pool, padding 1) or ``"ceil"`` (no padding, ceil mode; original SENet).
        avg_down: shortcut layout of ResNet-D: average pool, then a 1 x 1 conv.
        down_kernel_size: kernel of the shortcut conv (3 for SENet-154, else 1).
        avd: ResNeSt average downsampling in the block (see ``Bottleneck``).
        avd_first: that pool before the 3 x 3 conv instead of after it.
        block_args: layout switches of one block type (``stride_in_1x1``, ``mid_expansion``).
        output_stride: 32, or 16 / 8 for dense prediction: later stages dilate instead of striding.
        dilation_style: ``"timm"`` or ``"official"``: how the first block of a dilated stage pools,
            which only matters to reproduce the outputs of weights from either source.
        norm_layer: the norm everywhere (``nn.BatchNorm2d``; ``FrozenBatchNorm2d`` for detection,
            ``partial(nn.GroupNorm, 32)`` for small batches).
        act_layer: the activation everywhere.
        num_classes: classifier size.
        in_chans: input channels.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, growing linearly with block index up to this rate.
        drop_block_rate: DropBlock rate in stages 3 and 4, one DropBlock per place that drops
            (ramp them with ``set_drop_block_progress``).
        zero_init_last: start each residual branch at zero (last norm's gamma = 0).

    ``forward`` returns logits; :class:`~splitattn.models.features.ResNetFeatures` is the backbone.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        *,
        attn: AttentionSpec = NO_ATTENTION,
        cardinality: int = 1,
        base_width: int = 64,
        stem_width: int = 64,
        deep_stem: bool = False,
        stem_pool: Literal["pad", "ceil"] = "pad",
        avg_down: bool = False,
        down_kernel_size: int = 1,
        avd: bool = False,
        avd_first: bool = False,
        block_args: Mapping[str, Any] | None = None,
        output_stride: int = 32,
        dilation_style: Literal["timm", "official"] = "timm",
        norm_layer: ModuleFactory = nn.BatchNorm2d,
        act_layer: ModuleFactory = nn.ReLU,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        drop_block_rate: float = 0.0,
        zero_init_last: bool = True,
    ) -> None:
        super().__init__()
        _check_config(block, layers, attn, output_stride, in_chans, num_classes, stem_pool, dilation_style, avd)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.conv1 = _stem(in_chans, stem_width, deep_stem, norm_layer, act_layer)
        channels = stem_width * 2 if deep_stem else stem_width
        self.bn1 = norm_layer(channels)
        self.act1 = make_act(act_layer)
        if stem_pool == "ceil":
            self.maxpool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        else:
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.feature_info = [FeatureInfo(channels, 2, "act1")]

        layout = StageLayout(
            block=block,
            block_kwargs=dict(attn=attn, cardinality=cardinality, base_width=base_width, norm_layer=norm_layer,
                              act_layer=act_layer, **(block_args or {})),
            norm_layer=norm_layer,
            avd=avd,
            avd_first=avd_first,
            avg_down=avg_down,
            down_kernel_size=down_kernel_size,
            dilation_style=dilation_style,
        )
        for plan in plan_stages(layers, output_stride, drop_path_rate, drop_block_rate):
            self.add_module(plan.name, make_stage(layout, plan, channels))
            channels = plan.planes * block.expansion
            self.feature_info.append(FeatureInfo(channels, plan.net_stride, plan.name))

        self.num_features = channels
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(channels, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights(zero_init_last)

    def init_weights(self, zero_init_last: bool = True) -> None:
        """He init for convs, unit norms; optionally start every residual branch at zero."""
        if next(self.parameters()).is_meta:
            # Meta tensors hold no values to set, yet the init functions still run their reference
            # decompositions on them: 0.4 s for ResNeSt-101, per model of the zoo table (built on meta).
            return
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm)) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_last:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    module.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Input image batch to the last stage's feature map, ``(N, num_features, H/32, W/32)``."""
        self.check_input(x)
        x = self.maxpool(self.forward_stem(x))
        for stage in self.stages:
            x = self.run_stage(stage, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, dropout and classify; ``pre_logits`` returns the pooled features instead."""
        x = self.head_drop(self.global_pool(x).flatten(1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one (``0`` removes it)."""
        if num_classes < 0:
            raise SplitattnError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        cfg = getattr(self, "pretrained_cfg", None)
        if isinstance(cfg, dict) and len(cfg.get("label_names", ())) != num_classes:  # the old head's class names
            cfg.pop("label_names", None)
            cfg.pop("label_synsets", None)
